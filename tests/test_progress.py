"""qa.progress: in a log (stderr not a terminal) progress is a plain line every few seconds, not frames."""

from __future__ import annotations

import io

import qa.progress as progress


def test_a_plain_bar_writes_a_line_every_few_seconds_and_one_at_the_end(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    bar = progress.PlainBar(total=69_349, desc="embedding", unit="chunk", file=out, leave=False, mininterval=0)
    for _ in range(100):  # 100 updates within 3 s: no line but the first
        bar.update(128)
        clock[0] += 0.03
    clock[0] += progress.PLAIN_EVERY
    bar.update(128)
    bar.update(69_349 - bar.n)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 3, lines
    assert lines[0] == "embedding 0 of 69,349 chunks"
    assert lines[1].startswith("embedding 12,928 of 69,349 chunks") and "left" in lines[1]
    assert lines[2].startswith("embedding 69,349 of 69,349 chunks, done in")


def test_bars_are_plain_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    bar = progress.bar(10, "reading", unit="B", unit_scale=True)
    assert isinstance(bar, progress.PlainBar)
    bar.close()
