"""Real Milvus servers on 127.0.0.1 for the tests, started once per session and stopped at its end.

* ``lite_server``: ``milvus-lite server`` (milvus-lite 3.2.2, a Python re-implementation of Milvus) from the
  main venv.
* ``core_server``: Milvus's C++ core, the ``milvus`` binary of milvus-lite 2.5.1 in its own venv
  (``make .venv-milvus25/.ready``), which the main venv's pymilvus drives over gRPC. Missing, it skips the
  tests that need it, unless ``QA_REQUIRE_MILVUS_CORE=1`` (set by ``make test``), where it fails them.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_VENV = ROOT / ".venv-milvus25"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def core_binary() -> Path | None:
    found = sorted(CORE_VENV.glob("lib/python*/site-packages/milvus_lite/lib/milvus"))
    return found[0] if found else None


def _wait_ready(process: subprocess.Popen, uri: str, log: Path, seconds: float = 60) -> None:
    from pymilvus import MilvusClient

    from qa.store.milvus_io import GRPC_OPTIONS

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Milvus server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            client = MilvusClient(uri=uri, timeout=2, grpc_options=GRPC_OPTIONS, dedicated=True)
            client.list_collections(timeout=2)
            client.close()
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"Milvus server at {uri} did not answer within {seconds:.0f} s: {log.read_text()[-2000:]}")


class Server:
    """One server process; ``uri`` is what QA_MILVUS_URI would be set to."""

    def __init__(self, args: list[str], folder: Path, env: dict | None = None, port: int | None = None):
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([a.format(port=self.port) for a in args], stdout=out,
                                            stderr=subprocess.STDOUT, cwd=folder, env={**os.environ, **(env or {})},
                                            start_new_session=True)
        _wait_ready(self.process, self.uri, self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_lite(folder: Path) -> Server:
    exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent))
    return Server([exe, "server", "--data-dir", str(folder / "data"), "--host", "127.0.0.1", "--port", "{port}"],
                  folder)


def start_core(folder: Path) -> Server:
    binary = core_binary()
    if binary is None:
        message = f"Milvus's C++ core is not installed in {CORE_VENV}; run `make .venv-milvus25/.ready`"
        if os.environ.get("QA_REQUIRE_MILVUS_CORE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    lib = str(binary.parent)
    return Server([str(binary), str(folder / "core.db"), "127.0.0.1:{port}", "ERROR"], folder,
                  env={"LD_LIBRARY_PATH": lib})


_servers: dict[str, Server] = {}


def shared(kind: str) -> Server:
    """The session's one server of ``kind`` ("lite" or "core"), started on first use, stopped at exit."""
    if kind not in _servers:
        folder = Path(tempfile.mkdtemp(prefix=f"qa-milvus-{kind}-"))
        _servers[kind] = (start_lite if kind == "lite" else start_core)(folder)

        def stop(server=_servers[kind], folder=folder):
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)

        atexit.register(stop)
    return _servers[kind]


@pytest.fixture(scope="session")
def lite_server():
    return shared("lite")


@pytest.fixture(scope="session")
def core_server():
    return shared("core")


def milvus_settings(folder: Path, kind: str):
    """Settings of a new, empty Milvus index for the contract suite: Lite in-process ("file"), or a collection
    prefix of its own on the session's Lite server or C++ core."""
    from qa.config import MilvusSettings, Settings

    base = Settings(index=folder / "index", backend="milvus", milvus=MilvusSettings(timeout=20))
    if kind == "file":
        return base
    return replace(base, milvus=replace(base.milvus, uri=shared(kind).uri, prefix=f"c{next(_prefixes)}"))


_prefixes = itertools.count()
