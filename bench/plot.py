"""The figure in BENCHMARKS.md: query latency, incremental sync and FAISS search time against corpus size."""

from __future__ import annotations

from pathlib import Path

PLOT = Path(__file__).resolve().parent / "latency_vs_size.png"


def plot(speed: dict, ann: dict | None = None, path: Path = PLOT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if ann else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2))
    rows = sorted(speed["latency"], key=lambda r: r["chunks"])
    x = [r["chunks"] for r in rows]
    ax = axes[0]
    threads = rows[0]["threads"]["torch"]
    for source, label, style in ((lambda r: r, f"{threads} threads", "-"), (lambda r: r["one_thread"], "1 thread",
                                                                             "--")):
        ax.plot(x, [source(r)["search_ms"]["hybrid"]["p50"] for r in rows], "o" + style, color="tab:blue",
                label=f"search p50, {label}")
        ax.plot(x, [source(r)["ask_ms"]["p50"] for r in rows], "s" + style, color="tab:orange",
                label=f"ask p50, {label}")
    ax.set(xscale="log", xlabel="chunks in the index", ylabel="ms per call (p50)",
           title="Query latency (hybrid, k=5, new questions)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    inc = sorted(speed["incremental"], key=lambda r: r["chunks"])
    x = [r["chunks"] for r in inc]
    ax.plot(x, [r["add_s"] for r in inc], "o-", label="add one article")
    ax.plot(x, [r["add_besides_embed_s"] for r in inc], "o--", label="add, besides embedding it")
    ax.plot(x, [r["remove_s"] for r in inc], "s-", label="remove one article")
    ax.plot(x, [r["noop_s"] for r in inc], "^:", label="sync with nothing to do")
    ax.set(xlabel="chunks in the index", ylabel="seconds", title="Incremental sync")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    if ann:
        ax = axes[2]
        series: dict[str, list[tuple[int, float, float]]] = {}
        for r in ann["rows"]:
            if not r["data"].startswith("synthetic"):
                continue
            if r["index"].startswith("Flat"):
                name = "exact (Flat)"
            elif r["params"].endswith("(store)"):
                name = "IVF the store switches to above 250k (4√n lists, 1/8 probed)"
            elif r["params"] == "efSearch=256":
                name = f"HNSW32, {r['params']}"
            else:
                continue
            series.setdefault(name, []).append((r["n"], r["ms"]["p50"], r["recall@10"]))
        for name, points in series.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=name)
            for n, ms, rec in points:
                if rec < 1:
                    ax.annotate(f"recall {rec:.2f}", (n, ms), textcoords="offset points", fontsize=7,
                                xytext=(4, -10) if name.startswith("HNSW") else (4, 4))
        ax.set(xscale="log", yscale="log", xlabel="vectors (384-d)", ylabel="ms per query (p50)",
               title="FAISS search, one query at a time")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
