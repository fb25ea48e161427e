"""The encoders (issue 31): ONNX Runtime in fp32 and int8 beside torch, with the real bundled model.

The ONNX files are exported from the bundled weights on first use into the user's cache (qa.encoders), once per
machine; here into the default cache, as `make encoders` and the app do.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import CORPUS

from qa import IndexUnusable, Retriever, Settings, sync
from qa.cli import main
from qa.config import DEFAULT_ENCODER, ENCODERS
from qa.encoders import load_embedder
from qa.environment import settings_from_env
from qa.errors import ConfigError
from qa.store.local import LocalStore

TEXTS = ["The central bank raised interest rates by a quarter point on Wednesday, citing stubborn inflation.",
         "Who met the defence minister in Seoul?",
         "Floods in the north displaced thousands of families, officials said, as heavy rain continued for a third "
         "day and roads to the valley stayed closed.",
         "Ukraine", "North Korea sent troops to Russia, according to South Korean intelligence."] * 2


@pytest.fixture(scope="module")
def onnx():
    return load_embedder("all-MiniLM-L6-v2", encoder="onnx")


@pytest.fixture(scope="module")
def int8():
    return load_embedder("all-MiniLM-L6-v2", encoder="onnx-int8")


def test_the_encoder_is_chosen_by_qa_encoder(monkeypatch, tmp_path):
    assert settings_from_env(os.environ).encoder == DEFAULT_ENCODER
    for name in ENCODERS:
        monkeypatch.setenv("QA_ENCODER", name.upper())
        assert settings_from_env(os.environ).encoder == name
    monkeypatch.setenv("QA_ENCODER", "tensorrt")
    with pytest.raises(ConfigError, match=r"QA_ENCODER='tensorrt' is not one of torch, torch-bf16, onnx, onnx-int8"):
        settings_from_env(os.environ)
    monkeypatch.setenv("QA_ENCODER", "onnx")
    monkeypatch.setenv("QA_ENCODER_CACHE", str(tmp_path / "exports"))
    assert settings_from_env(os.environ).encoder_cache == tmp_path / "exports"


def test_onnx_vectors_are_torchs(embedder, onnx, int8):
    """fp32 ONNX gives torch's vectors; int8 weights move them a little. The late-chunking span vectors too."""
    assert (embedder.encoder, onnx.encoder, int8.encoder) == ("torch", "onnx", "onnx-int8")
    reference = embedder.encode(TEXTS)
    for other, floor in ((onnx, 0.9999), (int8, 0.97)):
        vectors = other.encode(TEXTS)
        assert vectors.shape == reference.shape and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert (vectors * reference).sum(axis=1).min() > floor
        assert (other.encode(TEXTS[1:2]) * reference[1]).sum() > floor  # a question alone: the one-thread path
        spans = [[(0, 10), (4, len(t))] for t in TEXTS]
        texts_ref, spans_ref = embedder.encode_with_spans(TEXTS, spans)
        texts_other, spans_other = other.encode_with_spans(TEXTS, spans)
        assert (texts_ref * texts_other).sum(axis=1).min() > floor
        assert min((a * b).sum(axis=1).min() for a, b in zip(spans_ref, spans_other, strict=True)) > floor
        assert np.array_equal(other.word_vectors(["troops", "cattle"]), embedder.word_vectors(["troops", "cattle"]))
    assert (onnx.encode(TEXTS) * reference).sum(axis=1).min() > 0.99  # the bar for the fp32 export


def test_bf16_vectors_are_close_to_fp32(embedder):
    bf16 = load_embedder("all-MiniLM-L6-v2", encoder="torch-bf16")
    assert bf16.encoder == "torch-bf16" and bf16 is not embedder
    vectors, reference = bf16.encode(TEXTS), embedder.encode(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() > 0.99
    assert (bf16.encode(TEXTS[1:2]) * reference[1]).sum() > 0.99
    text_vectors, _ = bf16.encode_with_spans(TEXTS, [[(0, 5)]] * len(TEXTS))
    assert (text_vectors * reference).sum(axis=1).min() > 0.99


def test_the_export_is_recorded_and_reused(onnx):
    """The export's folder is named by the weights' sha256 and says what it was made from; a second load reuses
    it."""
    from qa.encoders import export

    folder = onnx.path.parent
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert folder.name.endswith(record["weights_sha256"][:16])
    assert set(record["files"]) == {"model.onnx", "model_qint8.onnx"} and record["versions"]["onnxruntime"]
    before = (folder / "model.onnx").stat().st_mtime_ns
    assert export("all-MiniLM-L6-v2") == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == before


def test_the_index_records_its_encoder_and_a_change_rebuilds_it(tmp_path, embedder, onnx, capsys):
    index = tmp_path / "index"
    sync(CORPUS, index, embedder=embedder)
    assert LocalStore(index).manifest.encoder == "torch"
    assert main(["status", "--index", str(index)]) == 0
    assert "encoder torch" in capsys.readouterr().out

    # The settings now say onnx: the next sync rebuilds the whole index with it, and says why.
    report = sync(CORPUS, index, settings=Settings(encoder="onnx"))
    assert "was embedded by the torch encoder and the settings say onnx" in capsys.readouterr().err
    assert len(report.added) == 2 and report.chunks_embedded > 0
    assert LocalStore(index).manifest.encoder == "onnx"
    again = sync(CORPUS, index, settings=Settings(encoder="onnx"))
    assert again.chunks_embedded == 0 and not again.added  # no rebuild when nothing changed

    # The question is embedded by the index's encoder, whatever the settings say; another encoder is refused.
    retriever = Retriever(index, settings=Settings(encoder="torch"))
    assert retriever.embedder.encoder == "onnx"
    assert retriever.search("Where did Yoon meet Umerov?", k=1)
    retriever.close()
    with pytest.raises(IndexUnusable, match="embedded by the onnx encoder, not torch"):
        Retriever(index, embedder)
    assert main(["status", "--index", str(index)]) == 0
    assert "encoder onnx (the settings say" in capsys.readouterr().out
