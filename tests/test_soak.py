"""Short runs of the soak benchmarks: questions, hostile uploads and deletes against the app (bench/soak.py), and
many visitors, each call a new session (bench/sessions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import scaled

from bench import soak


@pytest.mark.scaled
@pytest.mark.slow
@pytest.mark.browser
def test_a_short_soak_fails_no_question_and_ends_equal_to_a_rebuild(capsys, tmp_path):
    if not Path(soak.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {soak.CHROMIUM} (make browser)")
    # 15 s of questions, uploads and one delete + `qa index` beside the app in `make test`; 30 s and two with
    # QA_TEST_SCALE=full (`make stress`). The long soaks are `make bench`'s (bench.soak: 30 minutes).
    minutes, delete_every = scaled(ci=(0.25, 4), full=(0.5, 10))
    code = soak.run(minutes=minutes, clients=3, delete_every=delete_every, out=tmp_path / "soak.json")
    out = capsys.readouterr().out
    assert code == 0, out
    assert ", 0 failed;" in out and "0 with the wrong verdict" in out and "equal to a fresh rebuild: True" in out


@pytest.mark.slow
def test_many_visitors_each_a_new_session_fail_no_call_and_memory_is_reported(capsys, tmp_path):
    from bench import sessions

    code = sessions.run(40, threads=2, ask_every=4, out=tmp_path / "sessions.json")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "40 API calls, each a new session" in out and ": 0 failed;" in out
    assert "MB at the end" in out and "limit 1,200 MB" in out
