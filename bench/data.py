"""The evaluation data in ../shared/eval, and the corpus folders the benchmarks index from it.

SQuAD paragraphs become one article each, written as records of one JSON Lines file, so an article's id is
``squad.jsonl#<passage id>`` (see :func:`article_id`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT.parent / "shared" / "eval"
SEED_CORPUS = ROOT / "corpus"
RESULTS = ROOT / "bench" / "results"
SQUAD_FILE = "squad.jsonl"


class DataError(ValueError):
    """Evaluation data that is missing or malformed; the message says which file and what to do."""


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    passage_id: str
    answers: tuple[str, ...]
    is_impossible: bool


@dataclass(frozen=True)
class SeedQuestion:
    question: str
    expect_any: tuple[str, ...]
    expect_abstain: bool


@dataclass(frozen=True)
class SquadSet:
    """A sample of SQuAD questions and the paragraphs to index for them (id -> text)."""

    questions: list[SquadQuestion]
    passages: dict[str, str]

    @property
    def answerable(self) -> list[SquadQuestion]:
        return [q for q in self.questions if not q.is_impossible]

    @property
    def unanswerable(self) -> list[SquadQuestion]:
        return [q for q in self.questions if q.is_impossible]


def load_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path} not found; give the folder of the evaluation files with --eval-dir")
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {lineno}: expected a JSON object")
        records.append(record)
    return records


def squad_passages(eval_dir: Path = EVAL_DIR) -> dict[str, str]:
    path = eval_dir / "squad2_sample_passages.jsonl"
    try:
        return {str(r["id"]): str(r["text"]) for r in load_jsonl(path)}
    except KeyError as exc:
        raise DataError(f"{path}: a record lacks {exc}; records need 'id' and 'text'") from None


def squad_questions(eval_dir: Path = EVAL_DIR) -> list[SquadQuestion]:
    path = eval_dir / "squad2_sample_questions.jsonl"
    try:
        return [SquadQuestion(str(r["id"]), str(r["question"]), str(r["passage_id"]),
                              tuple(a for a in r.get("answers", []) if a), bool(r.get("is_impossible")))
                for r in load_jsonl(path)]
    except KeyError as exc:
        raise DataError(f"{path}: a record lacks {exc}; records need 'id', 'question' and 'passage_id'") from None


def seed_questions(eval_dir: Path = EVAL_DIR) -> list[SeedQuestion]:
    path = eval_dir / "seed_questions.jsonl"
    return [SeedQuestion(str(r["question"]), tuple(r.get("expect_any", [])), bool(r.get("expect_abstain")))
            for r in load_jsonl(path) if r.get("question")]


def squad_set(eval_dir: Path = EVAL_DIR, limit: int | None = None, passages: int | None = None,
              seed: int = 0) -> SquadSet:
    """``limit`` questions (a seeded sample; all when None) and the paragraphs to index for them.

    ``passages`` caps the corpus: the sampled questions' own paragraphs first, then others in file order
    as distractors, up to that many; None indexes every paragraph.
    """
    questions = squad_questions(eval_dir)
    texts = squad_passages(eval_dir)
    missing = sorted({q.passage_id for q in questions} - set(texts))
    if missing:
        raise DataError(f"questions refer to paragraphs not in the passages file: {', '.join(missing[:5])}")
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit {limit}: give at least 1 question")
        questions = sorted(random.Random(seed).sample(questions, min(limit, len(questions))),
                           key=lambda q: q.id)
    if passages is None:
        return SquadSet(questions, texts)
    keep = list(dict.fromkeys(q.passage_id for q in questions))
    keep += [pid for pid in texts if pid not in set(keep)][:max(0, passages - len(keep))]
    return SquadSet(questions, {pid: texts[pid] for pid in keep})


def write_squad_corpus(folder: Path, passages: dict[str, str]) -> Path:
    """One JSON Lines file with a record per paragraph; returns the corpus folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": pid, "title": "", "text": text}, ensure_ascii=False) for pid, text in passages.items()]
    target = folder / SQUAD_FILE
    content = "\n".join(lines) + "\n"
    if not target.exists() or target.read_text(encoding="utf-8") != content:
        target.write_text(content, encoding="utf-8")
    return folder


def pipeline_version() -> str:
    """A digest of the code that turns articles into an index; cached indexes of other code are not reused."""
    import hashlib

    digest = hashlib.sha256()
    files = [ROOT / "qa" / name for name in ("chunking.py", "corpus.py", "embedding.py", "encoders.py", "indexing.py")]
    for path in files + sorted((ROOT / "qa" / "store").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def article_id(passage_id: str) -> str:
    """The id the corpus reader gives the article holding SQuAD paragraph ``passage_id``."""
    return f"{SQUAD_FILE}#{passage_id}"


def contains(text: str, needles: tuple[str, ...] | list[str]) -> bool:
    """Whether any needle occurs in ``text``, ignoring case and differences in whitespace."""
    haystack = normalize(text)
    return any(normalize(n) and normalize(n) in haystack for n in needles)


def normalize(text: str) -> str:
    return " ".join(text.split()).casefold()
