"""QA_DEVICE and QA_BACKEND: where the model runs and where the index lives, chosen through qa/config.py only."""

from __future__ import annotations

import os

import pytest

from qa.config import DEVICE_BATCH, detect_device
from qa.environment import settings_from_env
from qa.errors import ConfigError
from qa.store import BACKENDS, open_store


def test_the_device_defaults_to_what_torch_finds_and_sets_the_batch(monkeypatch):
    import torch

    settings = settings_from_env(os.environ)
    assert settings.device is None and settings.embed_device == detect_device()
    mps = torch.backends.mps.is_available()
    assert detect_device() == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    monkeypatch.setenv("QA_DEVICE", "CPU ")
    settings = settings_from_env(os.environ)
    assert (settings.device, settings.embed_batch) == ("cpu", DEVICE_BATCH["cpu"])
    monkeypatch.setenv("QA_BATCH_SIZE", "8")
    assert settings_from_env(os.environ).embed_batch == 8  # an explicit batch size wins over the device's


def test_a_device_that_does_not_exist_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("QA_DEVICE", "tpu")
    with pytest.raises(ConfigError, match=r"QA_DEVICE='tpu' is not one of cpu, cuda, mps"):
        settings_from_env(os.environ)


def test_the_embedder_runs_on_the_device_it_was_given(embedder):
    from qa.embedding import TorchEmbedder

    cpu = TorchEmbedder("all-MiniLM-L6-v2", device="cpu")
    assert (cpu.device, cpu.batch_size) == ("cpu", DEVICE_BATCH["cpu"])
    assert str(next(cpu.model.parameters()).device) == "cpu"
    assert float(cpu.encode(["harbour bridge"])[0] @ embedder.encode(["harbour bridge"])[0]) > 0.999


def test_a_backend_is_chosen_by_name(monkeypatch, tmp_path):
    assert "local" in BACKENDS and settings_from_env(os.environ).backend == "local"
    monkeypatch.setenv("QA_BACKEND", "nosuch")
    with pytest.raises(ConfigError, match=r"QA_BACKEND='nosuch' is not a backend; use one of local"):
        open_store(settings_from_env(os.environ, index=tmp_path))
