"""A short run of the soak benchmark (bench/soak.py): questions, hostile uploads and deletes against the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.browser
def test_a_short_soak_fails_no_question_and_ends_equal_to_a_rebuild(capsys, tmp_path):
    if not Path(soak.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {soak.CHROMIUM} (make browser)")
    code = soak.run(minutes=0.5, clients=3, delete_every=10, out=tmp_path / "soak.json")
    out = capsys.readouterr().out
    assert code == 0, out
    assert ", 0 failed;" in out and "0 with the wrong verdict" in out and "equal to a fresh rebuild: True" in out
