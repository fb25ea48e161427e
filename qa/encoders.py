"""Faster encoders for the same model: ONNX Runtime in fp32 or with int8 weights, and OpenVINO (issue 31).

They run the model exported by qa.export. ``openvino`` runs in bfloat16 on CPUs with AMX or AVX-512 BF16
(OpenVINO's own default there) and in fp32 elsewhere.

Why not ``SentenceTransformer(path, backend="onnx")``: its ONNX backend needs optimum-onnx, whose only release
(0.1.0) requires transformers < 4.58, and sentence-transformers 6.3 requires transformers >= 5; its OpenVINO
backend (optimum-intel 2.2) would replace the pinned torch 2.13 by 2.14. The encoder below is what that backend
does (the same export of the transformer, the same mean pooling and normalisation), on onnxruntime alone.

An exported encoder loads from its export folder alone, with neither torch nor transformers: `qa status` in 1.5 s
against 8.6, in 295 MiB against 729 (BENCHMARKS.md, "Encoders without torch"). The tokenizer, the word-piece table
(:meth:`Embedder.word_vectors`) and the span pooling of late chunking are the torch model's, so only the
transformer's pass changes; the index records the encoder (:attr:`qa.store.Manifest.encoder`) and a change of
encoder rebuilds it (qa.indexing).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.config import DEVICE_BATCH, ENCODERS, cpu_threads, default_encoder, detect_device
from qa.embedding import SMALL_BATCH, Embedder, TorchEmbedder
from qa.errors import ModelError
from qa.export import FILES, TABLE, TOKENIZER, export
from qa.tokens import Offsets, Tokens

__all__ = ["ENCODERS", "OnnxEmbedder", "load_embedder"]


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

    def _hidden(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[Offsets]]:
        """Token embeddings (texts, tokens, dimension), the attention mask and each text's token ranges, for one
        batch."""
        features, offsets = self.tokens.model_input(texts)
        feed = {k: v for k, v in features.items() if k in self._inputs}
        run = self._one if len(texts) <= SMALL_BATCH else self._many
        return run(feed), feed["attention_mask"], offsets

    def _batches(self, texts: Sequence[str]):
        """(positions, token embeddings, mask, token ranges) per batch, longest texts first: little padding per
        batch."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            group = order[start:start + self.batch_size]
            yield group, *self._hidden([texts[i] for i in group])

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for group, hidden, mask, _ in self._batches(texts):
                vectors[group] = _mean(hidden, mask)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _token_pass(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[Offsets]]:
        text_vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        offsets: list[Offsets] = [[]] * len(texts)
        with self._lock:
            for group, hidden, mask, ranges in self._batches(texts):
                text_vectors[group] = _mean(hidden, mask)
                for row, i in enumerate(group):
                    tokens[i] = hidden[row, :int(mask[row].sum())]
                    offsets[i] = ranges[row]
        return text_vectors, tokens, offsets


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
