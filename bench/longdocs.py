"""Retrieval on long articles: chunk sizes of our index beside txtai, on long documents and on the news sets.

    python -m bench.longdocs                       # chunk sizes 96, 128 (default), 192, 232; txtai beside
    python -m bench.longdocs --sizes 128 --no-peer

The news dev archive has 17 articles, too few for retrieval to matter (every question's article is in the top 5),
so the long documents come from the SQuAD sample: its 411 paragraphs clustered by topic (k-means on their
embeddings, fixed seed) and joined, in id order, into articles of about 1,000-1,500 words, as a wire story joins
sub-topics. Each answerable SQuAD question then has to find its paragraph's part inside a long article.

For each chunk size: passage recall@5/@10 (an answer string is in one of the top passages: what the answerer can
quote), the article's Hits@5 and MRR@10, and the assistant's first-sentence and cited rates. txtai (hybrid, the
same local model) runs over the same chunk strings and over 200-word chunks of each article, as txtai's own
examples cut text; it needs `pip install -e '.[bench]'`. The news dev and check sets' article ranking is reported
the same way, over the news archive of :mod:`bench.newsqa`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import newsqa
from bench.data import RESULTS, squad_passages, squad_questions
from bench.metrics import first_distinct, ranking_metrics
from bench.peer import TXTAI_WORDS, PeerUnavailable, TxtaiIndex, chunk_texts, titled_windows
from bench.report import save_json
from qa.config import Settings

SIZES = (96, 128, 192, 232)  # tokens per chunk; the model reads 256, the title takes the rest
TOPICS = 35  # the SQuAD 2.0 dev set's Wikipedia articles
ARTICLE_WORDS = 1000  # an article is closed once it holds this many words


def long_corpus(folder: Path, embedder, passages: dict[str, str] | None = None,
                topics: int = TOPICS) -> dict[str, str]:
    """Write the long articles of ``passages`` (default: the SQuAD sample's) into ``folder``, clustered into
    ``topics``; returns paragraph id -> article id (its file name)."""
    import faiss

    passages = squad_passages() if passages is None else passages
    ids = sorted(passages)
    vectors = embedder.encode([passages[i] for i in ids]).astype("float32")
    kmeans = faiss.Kmeans(vectors.shape[1], topics, niter=25, seed=1, spherical=True, verbose=False)
    kmeans.train(vectors)
    _, labels = kmeans.index.search(vectors, 1)
    topics: dict[int, list[str]] = {}
    for pid, label in zip(ids, labels[:, 0], strict=True):
        topics.setdefault(int(label), []).append(pid)
    folder.mkdir(parents=True, exist_ok=True)
    owner: dict[str, str] = {}
    for _, members in sorted(topics.items()):
        part: list[str] = []
        for pid in [*members, None]:
            if part and (pid is None or sum(len(passages[p].split()) for p in part) >= ARTICLE_WORDS):
                name = f"long-{len(set(owner.values())) + 1:03d}.md"
                (folder / name).write_text("\n\n".join(passages[p] for p in part) + "\n", encoding="utf-8")
                owner.update(dict.fromkeys(part, name))
                part = []
            if pid is not None:
                part.append(pid)
    return owner


def _has(texts, answers) -> bool:
    return any(newsqa.has_any(t, answers) for t in texts)


def measure(corpus: Path, index: Path, owner: dict[str, str], chunk_tokens: int, embedder) -> dict:
    from qa.assistant import Assistant
    from qa.indexing import sync
    from qa.retriever import Retriever

    sync(corpus, index, settings=dataclasses.replace(Settings(), chunk_tokens=chunk_tokens), embedder=embedder)
    retriever = Retriever(index, embedder)
    assistant = Assistant(retriever)
    questions = [q for q in squad_questions() if not q.is_impossible]
    recall = {5: [], 10: []}
    rankings, first, cited = [], [], []
    for q in questions:
        passages = retriever.search(q.question, k=40)
        for k, hits in recall.items():
            hits.append(_has([p.text for p in passages[:k]], q.answers))
        rankings.append(first_distinct([p.article_id for p in passages], 10))
        answer = assistant.ask(q.question)
        first.append(not answer.abstained and bool(answer.sentences) and _has([answer.sentences[0].text], q.answers))
        cited.append(not answer.abstained and _has([answer.text], q.answers))
    ranks = ranking_metrics(rankings, [owner[q.passage_id] for q in questions])
    row = {"system": "qa hybrid", "chunk_tokens": chunk_tokens, "chunks": retriever.info().chunks,
           "passage_recall@5": float(np.mean(recall[5])), "passage_recall@10": float(np.mean(recall[10])),
           "hits@5": ranks["hits@5"], "mrr@10": ranks["mrr@10"], "first": float(np.mean(first)),
           "cited": float(np.mean(cited)), "n": len(questions)}
    retriever.close()
    return row


def txtai_rows(index: Path, questions: list[tuple[str, str]]) -> list[dict]:
    """txtai hybrid over ``index``'s chunk strings, and over 200-word chunks of its articles."""
    from bench.reader import chunks, open_index

    rows = chunk_texts(index)
    store = open_index(index)
    try:
        articles: dict[str, tuple[str, list[str]]] = {}
        for p in chunks(store):
            articles.setdefault(p.article_id, (p.title, []))[1].append(p.text)
    finally:
        store.close()
    windows = []
    for article, (title, parts) in articles.items():
        # chunks overlap by a sentence: a repeated sentence does not matter here
        windows += [(article, window) for window in titled_windows(title, " ".join(parts))]
    out = []
    for label, items in (("same chunks", [(article, text) for _, article, text in rows]),
                         (f"{TXTAI_WORDS}-word chunks", windows)):
        peer = TxtaiIndex()
        peer.index([(i, text) for i, (_, text) in enumerate(items)])
        rankings = [first_distinct([items[i][0] for i in peer.search(q, 40)], 10) for q, _ in questions]
        ranks = ranking_metrics(rankings, [gold for _, gold in questions])
        out.append({"system": f"txtai hybrid, {label}", "hits@5": ranks["hits@5"], "mrr@10": ranks["mrr@10"],
                    "n": len(questions)})
    return out


def news_rows(embedder, peer: bool) -> list[dict]:
    """Article Hits@5 / MRR@10 on the news dev and check sets (questions asked alone, no source filter)."""
    from qa.indexing import sync
    from qa.retriever import Retriever

    out = []
    with tempfile.TemporaryDirectory(prefix="qa-longdocs-") as tmp:
        corpus = newsqa.build_corpus(Path(tmp) / "corpus")
        sync(corpus, Path(tmp) / "index", embedder=embedder)
        retriever = Retriever(Path(tmp) / "index", embedder)
        for name in newsqa.SETS:
            questions = [(r["question"], r["article"]) for r in newsqa.load(name) if r.get("article")
                         and not r.get("history") and not r.get("expect_abstain") and not r.get("filters")]
            rankings = [first_distinct([p.article_id for p in retriever.search(q, k=40)], 10) for q, _ in questions]
            ranks = ranking_metrics(rankings, [gold for _, gold in questions])
            rows = [{"system": "qa hybrid", "hits@5": ranks["hits@5"], "mrr@10": ranks["mrr@10"],
                     "n": len(questions)}]
            rows += txtai_rows(Path(tmp) / "index", questions) if peer else []
            out += [{"set": f"news {name}", **row} for row in rows]
        retriever.close()
    return out


def run(sizes=SIZES, peer: bool = True) -> list[dict]:
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    embedder = load_embedder("all-MiniLM-L6-v2")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-longdocs-") as tmp:
        owner = long_corpus(Path(tmp) / "corpus", embedder)
        for size in sizes:
            index = Path(tmp) / f"index-{size}"
            rows.append({"set": "SQuAD long articles", **measure(Path(tmp) / "corpus", index, owner, size, embedder)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if peer and size == Settings().chunk_tokens:
                questions = [(q.question, owner[q.passage_id]) for q in squad_questions() if not q.is_impossible]
                rows += [{"set": "SQuAD long articles", **r} for r in txtai_rows(index, questions)]
    return rows + news_rows(embedder, peer)


def render(rows: list[dict]) -> str:
    def cell(row, key):
        value = row.get(key)
        return "" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.3f}")

    keys = ["chunk_tokens", "chunks", "passage_recall@5", "passage_recall@10", "hits@5", "mrr@10", "first", "cited"]
    lines = ["| set | system | " + " | ".join(keys) + " | n |", "|---|---|" + "---:|" * (len(keys) + 1)]
    lines += [f"| {r['set']} | {r['system']} | " + " | ".join(cell(r, k) for k in keys) + f" | {r['n']} |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.longdocs", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated chunk sizes (tokens)")
    parser.add_argument("--no-peer", action="store_true", help="leave txtai out")
    parser.add_argument("--out", type=Path, default=RESULTS / "longdocs.json")
    args = parser.parse_args(argv)
    peer = not args.no_peer
    if peer:
        try:
            TxtaiIndex()
        except PeerUnavailable as exc:
            print(f"bench.longdocs: {exc}; leaving txtai out", file=sys.stderr)
            peer = False
    rows = run([int(s) for s in args.sizes.split(",")], peer)
    print(render(rows))
    save_json(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
