"""Scores and timings: ranking metrics over article ids, rates, and latency percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

#: The cut-offs of Hits@k.
HITS_AT = (1, 5, 10)
MRR_AT = 10
#: Articles a ranking is cut to (Hits@10, MRR@10).
TOP_ARTICLES = 10


def first_distinct(items: Iterable[str], k: int) -> list[str]:
    """The first ``k`` distinct items, in order: ranked chunks -> ranked articles."""
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
            if len(out) == k:
                break
    return out


def ranking_metrics(rankings: Sequence[Sequence[str]], gold: Sequence[str]) -> dict[str, float]:
    """Hits@1/5/10 and MRR@10 of ranked article ids against one gold id per question."""
    n = len(gold)
    if n == 0:
        return {**{f"hits@{k}": 0.0 for k in HITS_AT}, f"mrr@{MRR_AT}": 0.0, "n": 0}
    ranks = []
    for ranked, target in zip(rankings, gold, strict=True):
        ranks.append(list(ranked).index(target) + 1 if target in ranked else None)
    out: dict[str, float] = {f"hits@{k}": sum(r is not None and r <= k for r in ranks) / n for k in HITS_AT}
    out[f"mrr@{MRR_AT}"] = sum(1.0 / r for r in ranks if r is not None and r <= MRR_AT) / n
    out["n"] = n
    return out


def rate(flags: Sequence[bool]) -> float | None:
    """Share of True values; None for no values (printed as a dash, never as 0)."""
    return sum(map(bool, flags)) / len(flags) if flags else None


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean in milliseconds, and how many timings they are of."""
    if not seconds:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "mean": float(ms.mean()),
            "n": len(ms)}


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """The call's result and its wall-clock time in seconds."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start
