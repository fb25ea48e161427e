"""The scaled corpus: the SQuAD paragraphs plus generated articles (:mod:`bench.synth`), indexed in stages of
growing size, and what a sync costs at a stage (one article added, nothing to do, the article removed; the steps
every sync repeats).

Building a stage syncs every chunk on this machine's CPU (the generated articles get hashed vectors unless
``--real-vectors``), so each stage's index is cached under ``bench/results/cache/`` and reused by later runs; the
first full run takes a long time (see BENCHMARKS.md). The stages are built in a child process
(:func:`bench.process.child`), so its peak memory is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.data import RESULTS
from bench.metrics import timed
from bench.process import child, memory
from qa.config import DEFAULT_MODEL, Settings

# --- The scaled corpus, built in stages and cached ---------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One cached index of the scaled corpus."""

    target: int
    chunks: int
    sentences: int
    articles: int
    corpus: str
    index: str
    seconds: float  # time of the sync that grew the previous stage into this one
    chunks_embedded: int
    peak_rss_mib: float  # of the building process, up to this stage
    vectors: str = "model"  # "model", or "hashed": generated articles got HashedVectors (see bench.synth)


def scale_root(real_vectors: bool = False, settings: Settings | None = None) -> Path:
    from bench.synth import GENERATOR_VERSION

    s = settings or Settings()
    from bench.data import pipeline_version

    kind = "model" if real_vectors else "hashed"
    return RESULTS / "cache" / (f"scale-v{GENERATOR_VERSION}-{kind}-{Path(s.model).name}-{s.chunk_tokens}-"
                                f"{s.overlap}-{pipeline_version()}")


def cached_stages(root: Path | None = None, real_vectors: bool = False) -> dict[int, Stage]:
    root = root or scale_root(real_vectors)
    out = {}
    for meta in sorted(root.glob("stage-*/stage.json")):
        stage = Stage(**json.loads(meta.read_text()))
        out[stage.target] = stage
    return out


def build_stages(targets: Sequence[int], log: Callable[[str], None], real_vectors: bool = False) -> list[Stage]:
    """The cached stages for ``targets`` chunks, building the missing ones in a child process.

    Unless ``real_vectors``, the generated articles are indexed with :class:`bench.synth.HashedVectors`
    instead of the model (the SQuAD paragraphs keep their real vectors).
    """
    have = cached_stages(real_vectors=real_vectors)
    missing = [t for t in targets if t not in have]
    if missing:
        log(f"building scaled corpus stages {missing} in {scale_root(real_vectors)} ...")
        child("scale", ["--targets", ",".join(map(str, sorted(set(missing))))]
              + (["--real-vectors"] if real_vectors else []), timeout=None)
        have = cached_stages(real_vectors=real_vectors)
    return [have[t] for t in targets]


def scale_child(targets: Sequence[int], real_vectors: bool) -> dict:
    """Grow one index through the stages, copying each finished stage into the cache."""
    from bench.reader import open_index, rows, status
    from bench.synth import HashedVectors, generate, write_corpus
    from qa.chunking import Chunker
    from qa.corpus import parse_text
    from qa.encoders import load_embedder
    from qa.indexing import sync

    root = scale_root(real_vectors)
    model = load_embedder(DEFAULT_MODEL)
    embedder = model if real_vectors else HashedVectors(model)
    chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)
    work = Path(tempfile.mkdtemp(prefix="qa-scale-"))
    # Start from the largest cached stage below, else from the eval's SQuAD index: only new articles are embedded.
    have = cached_stages(root)
    start = max((t for t in have if t < min(targets)), default=None)
    shutil.copytree(have[start].index if start is not None else squad_index(model), work / "index",
                    ignore=shutil.ignore_patterns(".lock"))
    store = open_index(work / "index")
    squad_chunks = sum(r.chunks for r in rows(store) if r.id.startswith("squad.jsonl#"))
    store.close()
    articles, total, counts = generate(int(max(targets) / 3.5) + 500), squad_chunks, []
    for a in articles:  # chunks per generated article, to know how many articles make each stage
        counts.append(len(chunker.split(parse_text(a.markdown(), a.name))[1]))
        total += counts[-1]
        if total >= max(targets):
            break
    if total < max(targets):
        raise RuntimeError(f"generated articles give only {total} chunks; raise the article count")
    pool = write_corpus(root / "pool", articles[:len(counts)], squad=True)
    done = {}
    for target in sorted(targets):
        n, total = 0, squad_chunks
        while total < target:
            total += counts[n]
            n += 1
        folder = root / f"stage-{target}"
        shutil.rmtree(folder, ignore_errors=True)
        corpus = _link_tree(pool, folder / "corpus", ["squad.jsonl"] + [a.name for a in articles[:n]])
        report = sync(corpus, work / "index", settings=Settings(), embedder=embedder)
        shutil.copytree(work / "index", folder / "index", ignore=shutil.ignore_patterns(".lock"))
        held = status(folder / "index")
        chunks, sentences, count = held.chunks, held.sentences, held.articles
        stage = Stage(target, chunks, sentences, count, str(corpus), str(folder / "index"), report.seconds,
                      report.chunks_embedded, memory()["peak_rss_mib"], "model" if real_vectors else "hashed")
        (folder / "stage.json").write_text(json.dumps(asdict(stage), indent=2))
        done[target] = asdict(stage)
        print(f"stage {target}: {chunks} chunks, {report.chunks_embedded} embedded in {report.seconds:.0f}s",
              file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return done


def _link_tree(pool: Path, target: Path, names: Sequence[str]) -> Path:
    """A corpus folder holding ``names`` from ``pool`` as hard links (copies where links fail)."""
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(pool / name, dest)
        except OSError:
            shutil.copy2(pool / name, dest)
    return target


# --- Incremental sync at a stage ---------------------------------------------------------------------------


def incremental(stage: Stage, embedder) -> dict:
    """Time adding one new article to a copy of the stage's index, a sync with nothing to do, and removing it.

    The embedding time of the new article (its chunks and sentences, encoded alone) is measured right after,
    to report what the sync costs besides embedding.
    """
    from bench.synth import generate
    from qa.chunking import Chunker
    from qa.corpus import parse_text
    from qa.indexing import sync

    new = generate(1, seed=7)[0]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = _link_tree(Path(stage.corpus), Path(tmp) / "corpus", _files(Path(stage.corpus)))
        index = Path(tmp) / "index"
        shutil.copytree(stage.index, index)
        (corpus / "added-article.md").write_text(new.markdown(), encoding="utf-8")
        add = sync(corpus, index, settings=Settings(), embedder=embedder)
        noop = sync(corpus, index, settings=Settings(), embedder=embedder)
        (corpus / "added-article.md").unlink()
        remove = sync(corpus, index, settings=Settings(), embedder=embedder)
    article = parse_text(new.markdown(), "added-article.md")
    chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)
    sentences, chunks = chunker.split(article)
    texts = [c.embed_text(chunker.embed_title(article.title)) for c in chunks]
    # One pass of the model over the chunk texts: what the sync's embedding costs (its sentence vectors come
    # from the same pass, by late chunking).
    _, embed_s = timed(lambda: embedder.encode(texts))
    assert add.added == ["added-article.md"] and remove.removed == ["added-article.md"], (add, remove)
    return {"chunks": stage.chunks, "article_chunks": len(chunks), "article_sentences": len(sentences),
            "add_s": add.seconds, "add_embed_s": embed_s, "add_besides_embed_s": max(0.0, add.seconds - embed_s),
            "noop_s": noop.seconds, "remove_s": remove.seconds}


def _files(corpus: Path) -> list[str]:
    return [p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()]


def sync_parts(stage: Stage) -> dict[str, float]:
    """The O(corpus) steps every sync still repeats, each timed on its own at the stage's size (seconds).

    A sync lists the corpus and stats every file (only changed ones are read) and reads what the index holds
    (article hashes, file stats). A commit no longer rewrites the vectors or rebuilds BM25 (qa/store/local.py):
    bench/sync_cost.py measures what it costs instead.
    """
    from qa.corpus import list_files
    from qa.store import open_store

    out: dict[str, float] = {}
    _, out["list and stat corpus files"] = timed(lambda: [path.stat() for _, path in list_files(Path(stage.corpus))[0]])
    store = open_store(Settings(index=Path(stage.index)), writable=True)
    try:
        _, out["read indexed articles and files"] = timed(lambda: (store.indexed(), store.files()))
    finally:
        store.close()
    return out


def squad_index(embedder) -> Path:
    """The index of all SQuAD paragraphs that ``python -m bench.eval`` caches (built here when missing)."""
    from bench.data import squad_set
    from bench.eval import build_index, cache_dir

    data = squad_set()
    folder = cache_dir(data, Settings())
    build_index(folder, data.passages, Settings(), embedder)
    return folder / "index"
