"""A large synthetic news corpus for speed benchmarks: the SQuAD paragraphs plus generated articles.

The generated articles are word-level Markov text (order 2), trained on the 411 SQuAD paragraphs and the
bundled articles, so they have real English vocabulary, sentence lengths and punctuation, but say nothing
true. Each is a Markdown file with front matter (title, date, source), like a real archive. Generation is
seeded: the same ``seed`` gives the same corpus, so a built index can be cached and reused.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.data import EVAL_DIR, SEED_CORPUS, squad_passages, write_squad_corpus

#: Bumped whenever the generated text changes, so cached indexes of older text are not reused.
GENERATOR_VERSION = 1
SOURCES = ("Daily Planet", "Morning Ledger", "Evening Courier", "Harbor Times", "Valley Gazette")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class SynthArticle:
    name: str  # file name inside the corpus folder
    title: str
    date: str
    source: str
    sentences: list[str]

    def markdown(self) -> str:
        body = " ".join(self.sentences)
        return f'---\ntitle: "{self.title}"\ndate: {self.date}\nsource: {self.source}\n---\n\n{body}\n'


class MarkovText:
    """Order-2 word chain; sentences start where training sentences started and end on . ! or ?"""

    def __init__(self, texts: list[str], seed: int = 0):
        self.rng = random.Random(seed)
        self.next: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.starts: list[tuple[str, str]] = []
        for text in texts:
            words = _WORD.findall(text)
            for i in range(len(words) - 2):
                self.next[(words[i], words[i + 1])].append(words[i + 2])
                if i == 0 or words[i - 1].endswith((".", "!", "?")):
                    self.starts.append((words[i], words[i + 1]))

    def sentence(self, max_words: int = 45) -> str:
        a, b = self.rng.choice(self.starts)
        words = [a, b]
        while len(words) < max_words and not words[-1].endswith((".", "!", "?")):
            options = self.next.get((words[-2], words[-1]))
            if not options:
                break
            words.append(self.rng.choice(options))
        text = " ".join(words).rstrip(",;:")
        return text if text.endswith((".", "!", "?")) else text + "."


def generate(count: int, seed: int = 0, eval_dir: Path = EVAL_DIR) -> list[SynthArticle]:
    """``count`` articles of 6 to 16 sentences (about 1 to 5 chunks of 128 tokens each)."""
    texts = list(squad_passages(eval_dir).values())
    texts += [p.read_text(encoding="utf-8") for p in sorted(SEED_CORPUS.glob("*.md"))]
    chain = MarkovText(texts, seed)
    rng = random.Random(seed + 1)
    articles = []
    for i in range(count):
        title = " ".join(chain.sentence(10).rstrip(".!?").split()[:8]).replace('"', "'")
        day = f"{rng.randint(2018, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        sentences = [chain.sentence() for _ in range(rng.randint(6, 16))]
        articles.append(SynthArticle(f"synthetic/{i // 1000:03d}/{i:06d}.md", title, day, rng.choice(SOURCES),
                                     sentences))
    return articles


def write_corpus(folder: Path, articles: list[SynthArticle], eval_dir: Path = EVAL_DIR,
                 squad: bool = True) -> Path:
    """The corpus folder: the SQuAD paragraphs (``squad.jsonl``) and one Markdown file per article."""
    if squad:
        write_squad_corpus(folder, squad_passages(eval_dir))
    for article in articles:
        path = folder / article.name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = article.markdown()
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    return folder


class HashedVectors:
    """Stands in for the model when indexing the generated articles: random unit vectors keyed by the text.

    It offers what indexing uses of ``Embedder``: its name, encoder, batch size and sizes; encode, encode_with_spans,
    count and split.

    Embedding ~20k chunks and ~55k sentences of filler on 2 busy CPU cores takes the better part of an hour;
    these vectors take a second. Chunking still uses the real tokenizer, and every other step of a sync
    (reading, hashing, SQLite, FAISS, BM25) and of a search does exactly the same work, so those timings are
    unaffected. Dense-retrieval quality over such an index means nothing, and is not reported.
    """

    def __init__(self, model):
        self.model = model
        self.name, self.batch_size, self.encoder = model.name, model.batch_size, model.encoder
        self.max_tokens, self.dimension = model.max_tokens, model.dimension

    def encode(self, texts, progress: bool = False):
        import hashlib

        import numpy as np

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimension)
            out[i] = vector / np.linalg.norm(vector)
        return out

    def encode_with_spans(self, texts, spans):
        """Text vectors and, per text, a vector per character span (the model's late-chunking interface)."""
        return self.encode(texts), [self.encode([text[a:b] for a, b in wanted]) for text, wanted in
                                    zip(texts, spans, strict=True)]

    def count(self, texts):
        return self.model.count(texts)

    def split(self, text: str, max_tokens: int):
        return self.model.split(text, max_tokens)
