"""A short version of the load benchmark (bench/load.py): concurrent API clients while an article is indexed."""

from __future__ import annotations

import pytest

from bench import load


@pytest.mark.slow
def test_concurrent_clients_and_a_sync_lose_no_request(capsys):
    assert load.run(clients=6, questions=2) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "errors: 0" in out and "answered from it: True" in out and "not the deleted one: True" in out
