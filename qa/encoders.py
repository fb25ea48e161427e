"""Faster encoders for the same model: ONNX Runtime in fp32 or with int8 weights, and OpenVINO (issue 31).

The model's weights are exported here, on this machine, from the sentence-transformers folder the torch encoder
loads (nothing is downloaded): ``torch.onnx.export`` of its transformer, with eager attention (the graph ONNX
Runtime's transformer optimiser recognises; the default SDPA export is not fused). ``onnx`` and ``openvino`` run that
file; for ``onnx-int8`` ONNX Runtime's transformer optimiser first fuses attention, GELU and layer norms, then its
dynamic quantisation gives int8 weights (per channel; activations quantised on the fly): fusing first made int8
1.8x as fast on real chunks (BENCHMARKS.md, "Encoders"). ``openvino`` runs in bfloat16 on CPUs with AMX or AVX-512
BF16 (OpenVINO's own default there) and in fp32 elsewhere. The export goes into a cache
folder the user can see and delete (``Settings.encoder_cache``, default ``~/.cache/qa/encoders``; ``make encoders``
fills it ahead of time, else the first use does, in 10-20 s), one folder per model, named by the sha256 of its
weights, with ``export.json`` saying what it was made from and with which versions. An export whose record does
not match (other weights, another exporter version, a half-written folder) is made again.

Why not ``SentenceTransformer(path, backend="onnx")``: its ONNX backend needs optimum-onnx, whose only release
(0.1.0) requires transformers < 4.58, and sentence-transformers 6.3 requires transformers >= 5; its OpenVINO
backend (optimum-intel 2.2) would replace the pinned torch 2.13 by 2.14. The encoder below is what that backend
does (the same export of the transformer, the same mean pooling and normalisation), on onnxruntime alone.

The export also saves the model's tokenizer.json and its word-piece table (:meth:`Embedder.word_vectors`), so an
exported encoder loads with neither torch nor transformers: `qa status` in 1.5 s against 8.6, in 295 MiB against
729 (BENCHMARKS.md, "Encoders without torch"). The tokenizer, the table and the span pooling of late
chunking are the torch model's, so only the transformer's pass changes; the index records the encoder
(:attr:`qa.store.Manifest.encoder`) and a change of encoder rebuilds it (qa.indexing).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np

from qa.config import DEVICE_BATCH, ENCODERS, default_encoder, default_encoder_cache, detect_device, resolve_model
from qa.embedding import SMALL_BATCH, Embedder, TorchEmbedder
from qa.errors import ModelError
from qa.tokens import Tokens

__all__ = ["ENCODERS", "OnnxEmbedder", "export", "load_embedder"]

#: Bumped when the export below changes, so that older exports are made again (3: the tokenizer and word-piece
#: table beside the graphs, so that the exported encoders load without torch).
EXPORT_VERSION = 3
#: The ONNX files each encoder runs.
FILES = {"onnx": "model.onnx", "onnx-int8": "model_qint8.onnx", "openvino": "model.onnx"}
#: The model's tokenizer and its word-piece embedding table (float32, .npy), as the export saved them.
TOKENIZER, TABLE = "tokenizer.json", "word_embeddings.npy"
_export_lock = threading.Lock()


def weights_hash(model_path: Path) -> str:
    """The sha256 of the model's weight files (safetensors or pytorch_model.bin), in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in model_path.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        raise ModelError(f"no weights (*.safetensors, *.bin) in {model_path} to export an ONNX encoder from")
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__}


def export(model: str, cache: Path | None = None, log=None) -> Path:
    """The folder holding ``model``'s ONNX exports (fp32 and int8), made now if missing or stale."""
    source = Path(resolve_model(model)).expanduser()
    if not source.is_dir():
        raise ModelError(f"the ONNX encoders need the model as a local folder; {model!r} is not one (the hub cache "
                         "folder of a downloaded model works: give its path with --model or QA_MODEL)")
    weights = weights_hash(source)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model.strip("/")).strip("-.")[-60:] or "model"
    folder = (cache or default_encoder_cache()) / f"{name}-{weights[:16]}"
    record = {"model": model, "source": str(source), "weights_sha256": weights, "export_version": EXPORT_VERSION}
    with _export_lock:
        if _valid(folder, record):
            return folder
        if log is not None:
            log(f"exporting {model} to ONNX (fp32 and int8) in {folder}; once, about 20 s")
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=folder.name + ".part-", dir=folder.parent))
        try:
            shape = _export_into(source, work)
            files = {name: hashlib.sha256((work / name).read_bytes()).hexdigest()
                     for name in (*FILES.values(), TOKENIZER, TABLE)}
            (work / "export.json").write_text(json.dumps({**record, "versions": _versions(), "files": files,
                                                          "model_shape": shape}, indent=1), encoding="utf-8")
            if folder.exists():  # stale, or another process finished first: either way, ours replaces it
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.replace(work, folder)
            except OSError:  # another process put its (equal) export there in between
                if not _valid(folder, record):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder


def _valid(folder: Path, record: dict) -> bool:
    try:
        saved = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (all(saved.get(k) == v for k, v in record.items() if k != "source")
            and all((folder / name).is_file() for name in (*FILES.values(), TOKENIZER, TABLE)))


def _export_into(source: Path, folder: Path) -> dict:
    """The graphs, tokenizer and word-piece table into ``folder``; returns what loading needs to know."""
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(source), device="cpu")
    _check_mean_pooling(st, source)
    transformer = cast(torch.nn.Module, st[0].auto_model).eval()
    # The plain attention graph, which ONNX Runtime's optimiser fuses (OpenVINO too ran a question from it in 5.5 ms
    # against 9.6 from the SDPA export, in one run). A model without the choice keeps its own.
    choose = getattr(transformer, "set_attn_implementation", None)
    if callable(choose):
        try:
            choose("eager")
        except (ValueError, NotImplementedError):
            pass
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Hidden(torch.nn.Module):  # the token embeddings, as the Transformer module gives them to Pooling
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = st.tokenizer(["an example", "a longer example sentence, for the shapes"], padding=True,
                          return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
    fp32 = folder / FILES["onnx"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on the attention mask's Python branches
        torch.onnx.export(Hidden(transformer), tuple(sample[n] for n in names), str(fp32), input_names=names,
                          output_names=["token_embeddings"], dynamic_axes=axes, opset_version=17, dynamo=False)
    fused = folder / "fused.onnx"
    _fuse(fp32, fused, transformer.config)
    quiet = logging.getLogger()  # the quantiser logs "consider pre-processing" at WARNING on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fused), str(folder / FILES["onnx-int8"]), weight_type=QuantType.QInt8,
                         per_channel=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        quiet.setLevel(level)
    fused.unlink()
    st.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER))
    table = cast(Any, transformer).get_input_embeddings().weight.detach().float().numpy()
    np.save(folder / TABLE, np.ascontiguousarray(table))
    return {"max_tokens": int(st.max_seq_length or 256), "dimension": int(st.get_embedding_dimension() or 0),
            "pad_id": int(st.tokenizer.pad_token_id or 0), "pad_token": str(st.tokenizer.pad_token or "[PAD]")}


def _check_mean_pooling(st, source: Path) -> None:
    """The exported encoders pool by the mean of the token embeddings and normalise, as most sentence-transformers
    models do; a model with other modules (CLS pooling, a Dense layer) would get other vectors, so it is refused."""
    kinds = [type(module).__name__ for module in st]
    pooling = getattr(st[1], "pooling_mode", None) if len(kinds) > 1 else None
    if kinds[:2] != ["Transformer", "Pooling"] or pooling != "mean" or any(k != "Normalize" for k in kinds[2:]):
        raise ModelError(f"the exported encoders pool by the mean of the token embeddings; {source} has "
                         f"{' + '.join(kinds)} (pooling: {pooling}). Set QA_ENCODER=torch for this model.")


def _fuse(source: Path, target: Path, config) -> None:
    """ONNX Runtime's transformer optimiser on the export: attention, GELU and layer norms become single nodes.
    A model whose graph it does not know is copied as it is (the session's own optimisations still run)."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    try:
        optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                       opt_level=1).save_model_to_file(str(target))
    except Exception:  # noqa: BLE001 - the optimiser raises many kinds for graphs it does not know; unfused works
        shutil.copyfile(source, target)


def cpu_threads() -> int:
    """The cores this process may run on (2 here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxEmbedder(Embedder):
    """:class:`Embedder` with the transformer's pass on ONNX Runtime or OpenVINO (CPU): torch's vectors to within
    int8's or bfloat16's error.

    ONNX Runtime: two sessions, batches on all cores, a question or two on one (as the torch encoder does: its
    thread pool costs more than it saves on one short text). OpenVINO: one compiled model for both.
    """

    def __init__(self, model: str, batch_size: int | None = None, device: str | None = None,
                 encoder: str = "onnx-int8", cache: Path | None = None):
        if encoder not in FILES:
            raise ModelError(f"encoder {encoder!r} is not one of {', '.join(ENCODERS)}")
        if device not in (None, "cpu"):
            raise ModelError(f"the {encoder} encoder runs on the CPU only; set QA_ENCODER=torch for device {device}")
        runtime = _OpenVino if encoder == "openvino" else _OnnxRuntime
        try:
            importlib.import_module(runtime.module)
        except ImportError as exc:
            raise ModelError(f"the {encoder} encoder needs {runtime.module}: pip install {runtime.module}, or set "
                             "QA_ENCODER=torch") from exc
        folder = export(model, cache, log=_log)
        shape = json.loads((folder / "export.json").read_text(encoding="utf-8"))["model_shape"]
        tokens = Tokens((folder / TOKENIZER).read_text(encoding="utf-8"), shape["max_tokens"], shape["pad_id"],
                        shape["pad_token"], runtime.pad_to)
        super().__init__(model, encoder, "cpu", batch_size or DEVICE_BATCH["cpu"], shape["dimension"], tokens)
        self.path = folder / FILES[encoder]
        self._table_path = folder / TABLE
        self._table: np.ndarray | None = None
        self._many = runtime(self.path, cpu_threads())
        # OpenVINO: one compiled model for both. A question ran no slower on two threads than on one (p50 3.2-3.7
        # against 3.8-4.0 ms, the same run), and a second compiled model held 145 MB more.
        self._one = self._many if runtime is _OpenVino else runtime(self.path, 1)
        self._inputs = self._many.inputs

    def _input_table(self) -> np.ndarray | None:
        if self._table is None:  # read from disk as rows are used (47 MB for all-MiniLM-L6-v2)
            self._table = np.load(self._table_path, mmap_mode="r")
        return self._table

    def _hidden(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token embeddings (texts, tokens, dimension) and the attention mask, for one batch."""
        features, _ = self.tokens.model_input(texts)
        feed = {k: v for k, v in features.items() if k in self._inputs}
        run = self._one if len(texts) <= SMALL_BATCH else self._many
        return run(feed), feed["attention_mask"]

    def _batches(self, texts: Sequence[str]):
        """(positions, token embeddings, mask) per batch, longest texts first: little padding per batch."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            group = order[start:start + self.batch_size]
            hidden, mask = self._hidden([texts[i] for i in group])
            yield group, hidden, mask

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for group, hidden, mask in self._batches(texts):
                vectors[group] = _mean(hidden, mask)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _token_pass(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        text_vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        with self._lock:
            for group, hidden, mask in self._batches(texts):
                text_vectors[group] = _mean(hidden, mask)
                for row, i in enumerate(group):
                    tokens[i] = hidden[row, :int(mask[row].sum())]
        return text_vectors, tokens


class _OnnxRuntime:
    """One ONNX Runtime session. Its threads do not spin while waiting: on a busy machine spinning takes the cores
    from the other processes and gains nothing."""

    #: The package it needs.
    module = "onnxruntime"
    #: Inputs are padded to a multiple of this many tokens (None: to the longest text).
    pad_to: int | None = None

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feed)[0]


class _OpenVino:
    """One OpenVINO model compiled for the CPU, at OpenVINO's default precision there: bfloat16 where the CPU has
    AMX or AVX-512 BF16, fp32 elsewhere. Its infer request is reused (callers hold the embedder's lock).

    Threads are not pinned to cores: pinned, a question's one thread stays on a core another process keeps busy
    (question p50 3 ms or 8 ms here, by the run). Inputs are padded to a multiple of 16 tokens: a new input shape
    costs OpenVINO a shape pass, and questions of 25 lengths fall in 3 (p50 2.9 -> 2.2 ms per question).
    """

    module = "openvino"
    pad_to: int | None = 16

    def __init__(self, path: Path, threads: int):
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                       "ENABLE_CPU_PINNING": False})
        self.request = compiled.create_infer_request()
        self.inputs = {name for port in compiled.inputs for name in port.get_names()}

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(feed)[0]


def _mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean pooling over the real tokens, as the model's Pooling module does."""
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def load_embedder(model: str, batch_size: int | None = None, device: str | None = None,
                  encoder: str | None = None, cache: Path | None = None) -> Embedder:
    """One shared instance per model, batch size, device and encoder: loading takes seconds and hundreds of MB.

    ``encoder`` (qa.config.ENCODERS; None: qa.config.default_encoder) picks the runtime: torch, or ONNX Runtime or
    OpenVINO on an export made on first use into ``cache`` (default: qa.config.default_encoder_cache()).
    """
    encoder = encoder or default_encoder(device)
    if encoder != "torch":
        device = device or "cpu"
    device = device or detect_device()
    return _load_embedder(model, batch_size or DEVICE_BATCH.get(device, 32), device, encoder, cache)


@lru_cache(maxsize=4)
def _load_embedder(model: str, batch_size: int, device: str, encoder: str, cache: Path | None) -> Embedder:
    if encoder in ("torch", "torch-bf16"):
        embedder = TorchEmbedder(model, batch_size, device)
        if encoder == "torch-bf16":
            import torch

            embedder.model.to(torch.bfloat16)
            embedder.encoder = encoder
        return embedder
    return OnnxEmbedder(model, batch_size, device, encoder, cache)


def _log(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m qa.encoders`` (``make encoders``): export the model for the onnx, onnx-int8 and openvino encoders
    now, not on first use."""
    import argparse
    import os

    from qa.environment import configure_offline, settings_from_env

    parser = argparse.ArgumentParser(prog="python -m qa.encoders", description=(main.__doc__ or "").split(":")[0])
    parser.add_argument("--model", help="sentence-transformers model folder (default: QA_MODEL, or the bundled one)")
    args = parser.parse_args(argv)
    settings = settings_from_env(os.environ, model=args.model)
    configure_offline(settings.model)
    folder = export(settings.model, settings.encoder_cache, log=_log)
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    print(f"{folder}: " + ", ".join(f"{name} ({(folder / name).stat().st_size / 2**20:.0f} MB, sha256 "
                                    f"{digest[:12]})" for name, digest in record["files"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
