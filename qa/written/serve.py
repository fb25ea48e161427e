"""llama.cpp's OpenAI-compatible server, prebuilt, in a process of its own: ``python -m qa.written.serve``.

The server is the one inside the ``xllamacpp`` wheel (a Python extension; nothing is compiled here): creating
``xllamacpp.Server`` loads the model and starts llama.cpp's HTTP server (``/health``, ``/v1/models``,
``/v1/chat/completions``) on the host and port given. This module takes the arguments of ``llama-server`` that
:class:`qa.written.local.LocalServer` uses, so either can be started with the same command line, and serves until
the process is stopped (SIGTERM, SIGKILL) or the process that started it is gone.

``OMP_WAIT_POLICY=PASSIVE`` is set before the extension loads: its OpenMP threads otherwise spin while they wait,
and on a machine with other work generation was measured 4-6 times slower.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m qa.written.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ctx-size", type=int, default=4096)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alias", help="the model's name in /v1/models (default: the file's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before the extension (and its OpenMP) loads
    # The process to outlive not: the one that started this (LocalServer names itself, as a shell may have gone).
    parent = int(os.environ.get("QA_SERVE_PARENT") or os.getppid())
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.ui = False
    if args.alias:
        params.model_alias = {args.alias}
    for stop in (signal.SIGTERM, signal.SIGINT):  # the server's threads hold no state worth a clean exit
        signal.signal(stop, lambda *_: os._exit(0))
    server = xllamacpp.Server(params)  # loads the model, then listens; raises if either fails
    print(f"qa.written.serve: {args.alias or args.model} at {server.listening_address}", file=sys.stderr, flush=True)
    while os.getppid() == parent:  # an orphan (its starter killed) stops rather than hold the port and the memory
        time.sleep(1.0)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
