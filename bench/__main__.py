"""Every benchmark in one run: quality (bench.eval, bench.newsqa, bench.realnews, bench.longdocs), defaults
(bench.tune), speed (bench.speed), FAISS (bench.ann), the cost of one sync against the index size
(bench.sync_cost), written answers beside quotes (bench.llm; needs `make llm`).

    python -m bench            # make bench; long the first time (it builds and caches the 20k-chunk index)
    python -m bench --quick    # 100 questions, stages up to 5k chunks, 100k vectors, sync cost at 2k and 20k
    python -m bench --only sync_cost --old /tmp/qa-old   # the old design beside (a worktree of an older commit)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import ann, llm, longdocs, newsqa, probes, realnews, realnews_peer, speed, sync_cost, tune
from bench import eval as quality
from bench.data import RESULTS
from bench.peer import PeerUnavailable
from bench.plot import PLOT, plot
from bench.report import save_json
from qa.environment import configure_offline

PARTS = ("eval", "newsqa", "realnews", "longdocs", "tune", "speed", "ann", "sync_cost", "llm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller and faster: see above")
    parser.add_argument("--no-peer", action="store_true", help="leave txtai out")
    parser.add_argument("--hnsw-1m", action="store_true", help="build HNSW at 1M vectors too (minutes)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--old", type=Path, help="sync_cost: a checkout of the design before issue 15, run beside")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not parts or any(p not in PARTS for p in parts):
        print(f"bench: error: --only {args.only!r}: choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    configure_offline()
    results: dict = {"quick": args.quick, "seconds": {}}
    sections = []
    if "eval" in parts:
        started = time.perf_counter()
        results["eval"] = quality.evaluate(limit=100 if args.quick else None, peer=not args.no_peer)
        results["seconds"]["eval"] = time.perf_counter() - started
        sections.append(("Quality (python -m bench.eval)", quality.render(results["eval"])))
    if "newsqa" in parts:
        started = time.perf_counter()
        results["newsqa"] = newsqa.run()
        results["seconds"]["newsqa"] = time.perf_counter() - started
        sections.append(("Answers on news (python -m bench.newsqa)", newsqa.render_all(results["newsqa"])))
    if "realnews" in parts:
        if (realnews.DATA / "dev" / "questions.jsonl").exists():
            started = time.perf_counter()
            results["realnews"] = realnews.run()
            results["seconds"]["realnews"] = time.perf_counter() - started
            sections.append(("Answers on real news (python -m bench.realnews)",
                             "\n\n".join(realnews.render(n, r) for n, r in results["realnews"].items())))
            if not args.no_peer:  # txtai over the same archives: 25 minutes here, most of it embedding
                try:
                    results["realnews_peer"] = realnews_peer.run()
                    sections.append(("txtai on real news (python -m bench.realnews_peer)", "\n".join(
                        f"{n}: {r['system']}: Hits@5 {r['hits@5']:.1%}, MRR@10 {r['mrr@10']:.3f}"
                        for n, r in results["realnews_peer"].items())))
                except PeerUnavailable as exc:
                    print(f"txtai on real news left out: {exc}", file=sys.stderr)
            results["probes"] = probes.run()  # the IVF probes on the real-news indexes realnews.run brought up to date
            sections.append(("IVF lists probed, on real vectors (python -m bench.probes)",
                             probes.render(results["probes"])))
        else:
            print(f"realnews left out: {realnews.DATA} holds no prepared set (see bench/realnews.py)", file=sys.stderr)
    if "longdocs" in parts:
        started = time.perf_counter()
        results["longdocs"] = longdocs.run((128,) if args.quick else longdocs.SIZES, not args.no_peer)
        results["seconds"]["longdocs"] = time.perf_counter() - started
        sections.append(("Retrieval on long articles (python -m bench.longdocs)", longdocs.render(results["longdocs"])))
    if "tune" in parts:
        started = time.perf_counter()
        results["tune"] = tune.tune(limit=100 if args.quick else None)
        results["seconds"]["tune"] = time.perf_counter() - started
        sections.append(("Choosing the defaults (python -m bench.tune)", tune.render(results["tune"])))
    if "speed" in parts:
        started = time.perf_counter()
        results["speed"] = speed.run(args.quick, not args.no_peer)
        results["seconds"]["speed"] = time.perf_counter() - started
        sections.append(("Speed (python -m bench.speed)", speed.render(results["speed"])))
    if "ann" in parts:
        started = time.perf_counter()
        results["ann"] = ann.run(args.quick, args.hnsw_1m)
        results["seconds"]["ann"] = time.perf_counter() - started
        sections.append(("FAISS at scale (python -m bench.ann)", ann.render(results["ann"])))
    if "sync_cost" in parts:
        started = time.perf_counter()
        # The old design is built in one commit and timed once (its commits rebuild BM25 over everything).
        results["sync_cost"] = sync_cost.run((2_000, 20_000) if args.quick else sync_cost.SIZES, args.old,
                                             old_batch=0, old_rounds=1)
        results["seconds"]["sync_cost"] = time.perf_counter() - started
        sections.append(("One sync against the index size (python -m bench.sync_cost)",
                         sync_cost.render(results["sync_cost"])))
    if "llm" in parts:
        started = time.perf_counter()
        # The 1.5B that `make run-llm` serves, and the 0.5B beside it; real news when its sets are prepared.
        per_set = (10 if args.quick else 20) if (realnews.DATA / "dev" / "questions.jsonl").exists() else 0
        for model in ("qwen2.5-1.5b", "qwen2.5-0.5b"):
            results[f"llm {model}"] = got = llm.run_with_server(None, None, model, 20 if args.quick else 40,
                                                                15 if args.quick else 30, per_set)
            text = llm.render(got)
            if "realnews" in got:
                text += "\n\n" + llm.render_realnews(got["realnews"], model)
            sections.append((f"Written answers ({model}) beside quotes (python -m bench.llm)", text))
        results["seconds"]["llm"] = time.perf_counter() - started
    if "speed" in results:
        # The committed plot (BENCHMARKS.md) comes from the full run; a quick run's goes beside its JSON.
        where = RESULTS / "latency_vs_size-quick.png" if args.quick else PLOT
        results["plot"] = str(plot(results["speed"], results.get("ann"), where))
    for title, text in sections:
        print(f"\n## {title}\n\n{text}")
    print("\n" + ", ".join(f"{k} {v:.0f}s" for k, v in results["seconds"].items()))
    print(f"saved {save_json(results, args.out)}" + (f" and {results['plot']}" if "plot" in results else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
