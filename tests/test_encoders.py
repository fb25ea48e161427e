"""The encoders (issue 31): ONNX Runtime in fp32 and int8, and OpenVINO, beside torch, with the real bundled model.

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
from qa.config import DEFAULT_ENCODER, ENCODERS, default_encoder
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
def torch32(embedder):
    """torch in fp32, the reference: the suite's ``embedder``."""
    assert embedder.encoder == "torch"
    return embedder


@pytest.fixture(scope="module")
def onnx():
    return load_embedder("all-MiniLM-L6-v2", encoder="onnx")


@pytest.fixture(scope="module")
def int8():
    return load_embedder("all-MiniLM-L6-v2", encoder="onnx-int8")


@pytest.fixture(scope="module")
def openvino():
    return load_embedder("all-MiniLM-L6-v2", encoder="openvino")


def test_the_encoder_is_chosen_by_qa_encoder(monkeypatch, tmp_path):
    monkeypatch.delenv("QA_ENCODER", raising=False)
    assert settings_from_env(os.environ).encoder is None  # the index's own; a new index gets the default
    for name in ENCODERS:
        monkeypatch.setenv("QA_ENCODER", name.upper())
        assert settings_from_env(os.environ).encoder == name
    monkeypatch.setenv("QA_ENCODER", "tensorrt")
    with pytest.raises(ConfigError, match=r"'tensorrt' is not one of torch, torch-bf16, onnx, onnx-int8, openvino"):
        settings_from_env(os.environ)
    monkeypatch.setenv("QA_ENCODER", "onnx")
    monkeypatch.setenv("QA_ENCODER_CACHE", str(tmp_path / "exports"))
    assert settings_from_env(os.environ).encoder_cache == tmp_path / "exports"


def test_exported_vectors_are_torchs(torch32, onnx, int8, openvino):
    """fp32 ONNX gives torch's vectors, and OpenVINO too (bfloat16 on this CPU: cos 0.99997); int8 weights move
    them a little. The late-chunking span vectors too, and a question alone (the one-thread path)."""
    assert (torch32.encoder, onnx.encoder, int8.encoder, openvino.encoder) == ("torch", "onnx", "onnx-int8",
                                                                                 "openvino")
    reference = torch32.encode(TEXTS)
    for other, floor in ((onnx, 0.9999), (int8, 0.97), (openvino, 0.9999)):
        vectors = other.encode(TEXTS)
        assert vectors.shape == reference.shape and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert (vectors * reference).sum(axis=1).min() > floor
        assert (other.encode(TEXTS[1:2]) * reference[1]).sum() > floor  # a question alone: the one-thread path
        spans = [[(0, 10), (4, len(t))] for t in TEXTS]
        texts_ref, spans_ref = torch32.encode_with_spans(TEXTS, spans)
        texts_other, spans_other = other.encode_with_spans(TEXTS, spans)
        assert (texts_ref * texts_other).sum(axis=1).min() > floor
        assert min((a * b).sum(axis=1).min() for a, b in zip(spans_ref, spans_other, strict=True)) > floor
        assert np.array_equal(other.word_vectors(["troops", "cattle"]), torch32.word_vectors(["troops", "cattle"]))
    assert (onnx.encode(TEXTS) * reference).sum(axis=1).min() > 0.99  # the bar for the fp32 export


def test_bf16_vectors_are_close_to_fp32(torch32):
    bf16 = load_embedder("all-MiniLM-L6-v2", encoder="torch-bf16")
    assert bf16.encoder == "torch-bf16" and bf16 is not torch32
    vectors, reference = bf16.encode(TEXTS), torch32.encode(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() > 0.99
    assert (bf16.encode(TEXTS[1:2]) * reference[1]).sum() > 0.99
    text_vectors, _ = bf16.encode_with_spans(TEXTS, [[(0, 5)]] * len(TEXTS))
    assert (text_vectors * reference).sum(axis=1).min() > 0.99


def test_the_export_is_recorded_and_reused(onnx):
    """The export's folder is named by the weights' sha256 and says what it was made from; a second load reuses
    it."""
    from qa.export import export

    folder = onnx.path.parent
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert folder.name.endswith(record["weights_sha256"][:16])
    assert set(record["files"]) == {"model.onnx", "model_qint8.onnx", "tokenizer.json", "word_embeddings.npy"}
    assert record["versions"]["onnxruntime"]
    assert record["export_version"] == 3  # eager attention, int8 fused before it is quantised, the tokenizer saved
    assert record["model_shape"] == {"max_tokens": 256, "dimension": 384, "pad_id": 0, "pad_token": "[PAD]"}
    before = (folder / "model.onnx").stat().st_mtime_ns
    assert export("all-MiniLM-L6-v2") == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == before


def test_the_index_records_its_encoder_and_a_change_rebuilds_it(tmp_path, torch32, onnx, capsys, monkeypatch):
    index = tmp_path / "index"
    sync(CORPUS, index, embedder=torch32)
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
        Retriever(index, torch32)
    monkeypatch.setenv("QA_ENCODER", "torch")
    assert main(["status", "--index", str(index)]) == 0
    assert "encoder onnx (the settings say torch: the next `qa index` rebuilds" in capsys.readouterr().out


def test_int8_runs_the_fused_graph(int8):
    """The int8 file holds ONNX Runtime's fused attention (eager export, then the transformer optimiser): 1.8x as
    fast as the unfused graph on real chunks (BENCHMARKS.md, "Encoders")."""
    import onnx as onnx_lib

    ops = {node.op_type for node in onnx_lib.load(str(int8.path)).graph.node}
    assert {"QAttention", "SkipLayerNormalization"} <= ops


def test_openvino_pads_inputs_to_a_few_shapes(openvino, torch32):
    """Questions of many lengths are padded to multiples of 16 tokens (fewer shapes for OpenVINO to prepare); the
    padding is masked out, so a question's vector is the same as torch's whatever its length."""
    questions = ["Who?", "Who met the defence minister in Seoul on Thursday?",
                 "How many North Korean soldiers are in Russia, according to the intelligence service of the South?"]
    for q in questions:
        vector = openvino.encode([q])[0]
        assert float(vector @ torch32.encode([q])[0]) > 0.9999
        hidden, mask, _ = openvino._hidden([q])
        assert hidden.shape[1] % 16 == 0 and hidden.shape[1] - 16 < mask.sum() <= hidden.shape[1]


def test_a_new_index_gets_the_default_encoder_and_an_old_one_keeps_its_own(tmp_path, torch32, capsys, monkeypatch):
    """Unset, the encoder is the index's own: upgrading never rebuilds an index. A new index, or one rebuilt on
    purpose, gets the default: openvino on the CPU (torch on a GPU, where the exported encoders do not run)."""
    assert DEFAULT_ENCODER == "openvino" and default_encoder("cpu") == "openvino" and default_encoder("cuda") == "torch"
    monkeypatch.delenv("QA_ENCODER", raising=False)
    fresh = tmp_path / "fresh"
    sync(CORPUS, fresh, settings=Settings())
    assert LocalStore(fresh).manifest.encoder == "openvino"

    old = tmp_path / "old"
    sync(CORPUS, old, embedder=torch32)  # as an index built before the default changed
    capsys.readouterr()
    report = sync(CORPUS, old, settings=Settings())
    assert report.chunks_embedded == 0 and not report.added and "rebuilding" not in capsys.readouterr().err
    assert LocalStore(old).manifest.encoder == "torch"
    assert main(["status", "--index", str(old)]) == 0
    out = capsys.readouterr().out
    assert "encoder torch" in out and "rebuilds" not in out
    retriever = Retriever(old)
    assert retriever.embedder.encoder == "torch" and retriever.search("Where did Yoon meet Umerov?", k=1)
    retriever.close()

    rebuilt = sync(CORPUS, old, settings=Settings(), rebuild=True)
    assert rebuilt.chunks_embedded > 0 and LocalStore(old).manifest.encoder == "openvino"


@pytest.mark.parametrize("name", ["torch32", "openvino"])
def test_questions_and_an_upload_on_two_threads_share_the_tokenizer_safely(name, request):
    """The web app encodes questions while an upload is chunked and indexed on another thread, with one embedder.
    A fast tokenizer's padding and truncation are settings of one shared object: unguarded, a question failed
    "Unable to create tensor" within the first few calls, and an upload's offsets came back padded (the soak's
    IndexError). Every answer on either thread must equal the one it gets alone."""
    import threading
    import time

    embedder = request.getfixturevalue(name)
    questions, texts = TEXTS[1:2] + TEXTS[3:4], TEXTS[:5]
    spans = [[(0, 10), (4, len(t))] for t in texts]
    alone = (embedder.encode(questions), embedder.count(texts), embedder.split(TEXTS[2], 7),
             embedder.encode_with_spans(texts, spans))
    failures: list[str] = []
    stop = time.monotonic() + 2.0

    def loop(step) -> None:
        while time.monotonic() < stop and not failures:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - any failure on a thread is the finding
                failures.append(f"{type(exc).__name__}: {exc}"[:300])

    def ask() -> None:
        assert np.allclose(embedder.encode(questions), alone[0], atol=1e-5), "a question's vectors changed"

    def chunk() -> None:
        assert embedder.count(texts) == alone[1], "token counts changed"
        assert embedder.split(TEXTS[2], 7) == alone[2], "split changed"

    def embed() -> None:
        vectors, pooled = embedder.encode_with_spans(texts, spans)
        assert np.allclose(vectors, alone[3][0], atol=1e-5), "an upload's vectors changed"
        assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(pooled, alone[3][1], strict=True))

    threads = [threading.Thread(target=loop, args=(step,)) for step in (ask, chunk, embed)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_an_exported_encoder_loads_without_torch_and_tokenizes_as_the_torch_one(torch32, openvino):
    """The openvino encoder (the default) loads from the export alone: a fresh process that loads it and answers
    `qa status` imports neither torch nor transformers nor sentence-transformers. Its tokenizer, word vectors and
    sentence vectors are the torch encoder's."""
    import subprocess
    import sys

    code = ("import sys; from qa.encoders import load_embedder; e = load_embedder('all-MiniLM-L6-v2', "
            "encoder='openvino'); e.encode(['who?']); e.encode_with_spans(['a b. c d.'], [[(0, 4)]]); "
            "e.word_vectors(['troops']); print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'transformers', 'sentence_transformers'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
    texts = [*TEXTS, "   leading and trailing spaces  ", "ünïcödé naïve café, 東京 and emoji 🙂", "x" * 300]
    assert openvino.count(texts) == torch32.count(texts)
    assert all(openvino.split(t, 5) == torch32.split(t, 5) for t in texts)
    words = ["troops", "soldiers", "shells", "Zelenskyy", "naïve", ""]
    assert np.allclose(openvino.word_vectors(words), torch32.word_vectors(words), atol=1e-6)
    assert (openvino.word_vectors(["troops"]) @ openvino.word_vectors(["soldiers"]).T).item() > 0.6


def _tiny_roberta(folder):
    """A sentence-transformers model unlike the bundled one, made here from nothing: a byte-level BPE tokenizer whose
    padding is id 1, a one-layer RoBERTa (no token_type_ids), mean pooling. Random weights: only shapes matter."""
    import torch
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers 6 moved them (the old path warns)
        from sentence_transformers.sentence_transformer import modules as st_models
    except ImportError:  # 5
        from sentence_transformers import models as st_models
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(TEXTS * 5, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    config = RobertaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=80, pad_token_id=1,
                           type_vocab_size=1)
    torch.manual_seed(0)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(folder / "hf")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(folder / "hf")
    transformer = st_models.Transformer(str(folder / "hf"), max_seq_length=64)
    dimension = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    SentenceTransformer(modules=[transformer, st_models.Pooling(dimension(), "mean"),
                                 st_models.Normalize()]).save(str(folder / "st"))
    return str(folder / "st")


def test_another_kind_of_model_works_with_either_encoder(tmp_path):
    """Any sentence-transformers model by configuration: a RoBERTa-like one (byte-level BPE, padding id 1, no
    token_type_ids) counts, splits and embeds alike with torch and with openvino, whose export once required
    token_type_ids."""
    model = _tiny_roberta(tmp_path)
    torch_model = load_embedder(model, encoder="torch", device="cpu")
    exported = load_embedder(model, encoder="openvino", cache=tmp_path / "cache")
    texts = [*TEXTS[:3], "  spaces around  ", "ünïcödé 東京 🙂"]
    reference = [len(torch_model.model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert torch_model.count(texts) == exported.count(texts) == reference
    assert all(torch_model.split(t, 3) == exported.split(t, 3) for t in texts)
    spans = [[(0, 5), (3, len(t))] for t in texts]
    (a, a_spans), (b, b_spans) = torch_model.encode_with_spans(texts, spans), exported.encode_with_spans(texts, spans)
    assert (a * b).sum(axis=1).min() > 0.999
    assert min((x * y).sum(axis=1).min() for x, y in zip(a_spans, b_spans, strict=True)) > 0.999
    assert (torch_model.encode(texts) * exported.encode(texts)).sum(axis=1).min() > 0.999
    assert np.allclose(torch_model.word_vectors(["harbour", "Seoul"]), exported.word_vectors(["harbour", "Seoul"]))
