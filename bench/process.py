"""The speed benchmark's processes: a part run in a child process of its own (``python -m bench.speed --child
KIND``), so that its peak memory is its own, and a process's resident memory read from /proc."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def memory(pid: int | str = "self") -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[{"VmHWM": "peak_rss_mib", "VmRSS": "rss_mib"}[key]] = int(value.split()[0]) / 1024
    return out


def child(kind: str, args: Sequence[str], timeout: float | None = 1800) -> dict:
    """Run ``python -m bench.speed --child KIND ARGS`` (see its ``main``) and return the JSON it saved."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "bench.speed", "--child", kind, "--child-out", str(out), *args]
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=timeout)
        return json.loads(out.read_text())
