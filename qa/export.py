"""The model exported for the faster encoders (qa.encoders), here, on this machine, from the sentence-transformers
folder the torch encoder loads (nothing is downloaded).

``torch.onnx.export`` of its transformer, with eager attention (the graph ONNX Runtime's transformer optimiser
recognises; the default SDPA export is not fused). ``onnx`` and ``openvino`` run that file; for ``onnx-int8`` ONNX
Runtime's transformer optimiser first fuses attention, GELU and layer norms, then its dynamic quantisation gives int8
weights (per channel; activations quantised on the fly): fusing first made int8 1.8x as fast on real chunks
(BENCHMARKS.md, "Encoders"). Beside the graphs go the model's tokenizer.json and its word-piece table, so that an
exported encoder loads with neither torch nor transformers.

The export goes into a cache folder the user can see and delete (``Settings.encoder_cache``, default
``~/.cache/qa/encoders``; ``make encoders`` fills it ahead of time, else the first use does, in 10-20 s), one folder
per model, named by the sha256 of its weights, with ``export.json`` saying what it was made from, with which
versions, and what loading needs (``model_shape``). An export whose record does not match (other weights, another
exporter version, a half-written folder) is made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

import numpy as np

from qa.config import default_encoder_cache, resolve_model
from qa.errors import ModelError

__all__ = ["EXPORT_VERSION", "FILES", "TABLE", "TOKENIZER", "export", "weights_hash"]

#: Bumped when the export below changes, so that older exports are made again (3: the tokenizer and word-piece
#: table beside the graphs, so that the exported encoders load without torch).
EXPORT_VERSION = 3
#: The ONNX files each encoder runs.
FILES = {"onnx": "model.onnx", "onnx-int8": "model_qint8.onnx", "openvino": "model.onnx"}
#: The model's tokenizer and its word-piece embedding table (float32, .npy), as the export saved them.
TOKENIZER, TABLE = "tokenizer.json", "word_embeddings.npy"
#: Every file an export holds besides export.json.
SAVED = (*dict.fromkeys(FILES.values()), TOKENIZER, TABLE)
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
            files = {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in SAVED}
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
            and all((folder / name).is_file() for name in SAVED))


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
    sample = st.tokenizer(["an example", "a longer example sentence, for the shapes"], padding=True,
                          return_tensors="pt")
    # The inputs the model takes: a RoBERTa-like model has no token_type_ids.
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]

    class Hidden(torch.nn.Module):  # the token embeddings, as the Transformer module gives them to Pooling
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

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
