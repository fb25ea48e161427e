"""The fitted model that ranks candidate sentences and decides when to refuse (``make train`` writes it).

A logistic regression over :data:`qa.answering.features.FEATURES`: ``P(the sentence holds the answer)``. The best
candidate is the one with the highest probability; the answer is refused when that probability is below the model's
threshold, chosen on the dev sets for a stated share of answerable questions refused (bench/train.py). The file
(qa/answering/ranker.json) holds the feature names, their scaling, the coefficients and the threshold: no text of the
data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.answering.features import NAMES
from qa.errors import QAError

#: The committed model.
MODEL_FILE = Path(__file__).with_name("ranker.json")


class ModelFileError(QAError):
    """The ranker's file is missing, unreadable or made for other features; the message says what to run."""


@dataclass(frozen=True)
class Ranker:
    """``P(answer) = sigmoid(((x - mean) / scale) @ coef + intercept)`` over the features named ``names``."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float  # refuse below this probability
    about: str = ""  # how it was fitted (data, sizes), for `qa status` and BENCHMARKS.md

    def logits(self, table: np.ndarray) -> np.ndarray:
        return ((table - self.mean) / self.scale) @ self.coef + self.intercept

    def probabilities(self, table: np.ndarray) -> np.ndarray:
        return probability(self.logits(table))

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.round(6).tolist(), "scale": self.scale.round(6).tolist(),
                "coef": self.coef.round(6).tolist(), "intercept": round(self.intercept, 6),
                "threshold": round(self.threshold, 6), "about": self.about}

    @classmethod
    def from_dict(cls, data: dict) -> Ranker:
        return cls(tuple(data["names"]), np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]), float(data["threshold"]),
                   str(data.get("about", "")))


def probability(logits: np.ndarray) -> np.ndarray:
    """The probabilities logits stand for: ``1 / (1 + e^-logit)``."""
    return 1 / (1 + np.exp(-logits))


@lru_cache(maxsize=4)
def load(path: Path = MODEL_FILE) -> Ranker:
    """The model in ``path``; refused when its features are not :data:`qa.answering.features.NAMES`, in that order."""
    try:
        model = Ranker.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"the answer ranker {path} cannot be read ({exc}); restore it from git or run "
                             "`make train`") from None
    if model.names != NAMES:
        raise ModelFileError(f"the answer ranker {path} was fitted on other features than "
                             "qa/answering/features.py lists; run `make train` to refit it")
    return model
