"""The embedding model: the encoder seam (:class:`Embedder`) and torch's sentence-transformers encoder.

:class:`Embedder` holds what every encoder shares: token counts and ranges (qa.tokens), word vectors from the
model's word-piece table, and the vectors of sentences inside a chunk from one pass. An encoder adds the model's
pass: :class:`TorchEmbedder` here (sentence-transformers on torch, loaded offline by default, any device), and
the exported ONNX Runtime and OpenVINO ones in qa.encoders, which load without torch. :func:`model_inputs` and
:func:`embed_chunks` are the indexing pass over them: an article's chunks with their title, and the chunk and sentence
vectors of one pass (late chunking).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from qa.chunking import Chunk, Span
from qa.config import DEVICE_BATCH, detect_device, resolve_model
from qa.errors import ModelError
from qa.tokens import Offsets, Tokens

#: Inputs up to this many texts are encoded on one thread.
SMALL_BATCH = 4
WORD_CACHE = 20_000  # word vectors kept (384 floats each: 31 MB at most for all-MiniLM-L6-v2)
__all__ = ["Embedder", "ModelError", "TorchEmbedder", "embed_chunks", "model_inputs"]


class Embedder:
    """Encodes texts into unit-length float32 vectors, and counts and splits text in model tokens.

    An encoder implements :meth:`encode`, :meth:`_token_pass` and :meth:`_input_table`; the rest is here.
    """

    def __init__(self, name: str, encoder: str, device: str, batch_size: int, dimension: int, tokens: Tokens):
        self.name = name
        #: Which runtime encodes (qa.config.ENCODERS).
        self.encoder = encoder
        self.device = device
        self.batch_size = batch_size
        self.dimension = dimension
        self.tokens = tokens
        self.max_tokens = tokens.max_tokens
        # The model, one caller at a time: torch modules and an OpenVINO infer request are not safe to call from
        # many threads at once. The tokenizer needs no lock (qa.tokens).
        self._lock = threading.Lock()
        self._words: dict[str, np.ndarray] = {}  # word_vectors' cache, oldest first
        self._words_lock = threading.Lock()

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Normalized vectors, shape (len(texts), dimension), float32."""
        raise NotImplementedError

    def _token_pass(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[Offsets]]:
        """The texts' pooled vectors (not normalized), each text's token embeddings (real tokens only) and their
        character ranges (:meth:`Tokens.model_input`'s), from one pass."""
        raise NotImplementedError

    def _input_table(self) -> np.ndarray | None:
        """The model's word-piece embedding table (float32, one row per token id); None for a model without one."""
        return None

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                          ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of the texts, and of character spans inside them, from one pass of the model.

        A span's vector is the normalized mean of the model's token embeddings over the span's tokens, as the
        model pools a whole text, but with the surrounding text as context ("late chunking"). This gives the
        answerer a vector per sentence without embedding every sentence a second time.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        text_vectors, token_vectors, offsets = self._token_pass(texts)
        text_vectors /= np.linalg.norm(text_vectors, axis=1, keepdims=True)
        span_vectors: list[np.ndarray] = []
        for tokens, marks, wanted in zip(token_vectors, offsets, spans, strict=True):
            if len(tokens) != len(marks):  # the model's tokenizer gives both: a fault of ours, said plainly
                raise ModelError(f"the model saw {len(tokens)} tokens where its tokenizer gives {len(marks)}")
            starts = np.array([a for a, b in marks])
            ends = np.array([b for a, b in marks])
            real = ends > starts  # special tokens have empty offsets
            vectors = np.zeros((len(wanted), self.dimension), dtype=np.float32)
            for i, (a, b) in enumerate(wanted):
                inside = real & (starts < b) & (ends > a)
                vectors[i] = tokens[inside].mean(axis=0) if inside.any() else text_vectors[len(span_vectors)]
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            span_vectors.append(vectors)
        return np.ascontiguousarray(text_vectors, dtype=np.float32), span_vectors

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Unit vectors of single words from the model's input embeddings, a word of several word pieces as
        their mean: no pass through the model (300 words: 8.6 ms the first time, 0.4 ms from the cache).
        Context-free, but enough to tell "troops" ~ "soldiers" (0.69) and "cows" ~ "cattle" (0.68) from
        "troops" ~ "shells" (0.05) with all-MiniLM-L6-v2 (BENCHMARKS.md, "The asked-for thing")."""
        with self._words_lock:
            return self._word_vectors(words)

    def _word_vectors(self, words: Sequence[str]) -> np.ndarray:
        missing = [w for w in dict.fromkeys(words) if w not in self._words]
        if missing:
            table = self._input_table()
            if table is None:  # no table: every word is unlike every other, and only a word itself counts
                vectors = np.zeros((len(missing), 1), dtype=np.float32)
            else:  # a bag of word pieces per word, averaged (a word with no pieces: zeros)
                pieces = self.tokens.ids(missing)
                sizes = np.array([len(ids) for ids in pieces])
                flat = np.array([i for ids in pieces for i in ids], dtype=np.int64)
                rows = np.asarray(table[flat], dtype=np.float32)
                vectors = np.zeros((len(missing), rows.shape[1]), dtype=np.float32)
                owner = np.repeat(np.arange(len(missing)), sizes)
                np.add.at(vectors, owner, rows)
                vectors /= np.maximum(sizes, 1)[:, None]
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            self._words.update(zip(missing, vectors, strict=True))
            while len(self._words) > WORD_CACHE:
                self._words.pop(next(iter(self._words)))
        if not words:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._words[w] for w in words]).astype(np.float32)

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.tokens.count(texts) if texts else []

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        offsets = self.tokens.offsets(text)
        pieces = []
        for i in range(0, len(offsets), max_tokens):
            window = offsets[i:i + max_tokens]
            start = window[0][0] if i else 0
            end = offsets[i + max_tokens][0] if i + max_tokens < len(offsets) else len(text)
            piece = text[start:end]
            # Trim whitespace so pieces are clean spans; never empty.
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece.rstrip())
            if trail > lead:
                pieces.append((start + lead, start + trail))
        return pieces or [(0, len(text))]


class TorchEmbedder(Embedder):
    """sentence-transformers on torch: the reference encoder, and the one for a GPU."""

    def __init__(self, model: str, batch_size: int | None = None, device: str | None = None):
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        transformers.logging.set_verbosity_error()  # e.g. "sequence longer than maximum" when counting tokens

        device = device or detect_device()
        if device not in DEVICE_BATCH:
            raise ModelError(f"device {device!r} is not one of {', '.join(DEVICE_BATCH)}; set QA_DEVICE to one")
        try:
            self.model = SentenceTransformer(resolve_model(model), device=device)
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            raise ModelError(
                f"cannot load embedding model {model!r}: {exc}. Give a sentence-transformers name or a local "
                "folder with --model or QA_MODEL (hub names need the network or a filled Hugging Face cache)."
            ) from exc
        self.model.eval()  # encode() sets this on every call; _few() relies on it being set once, here
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"embedding model {model!r} does not say the size of its vectors; give a sentence "
                             "embedding model with --model or QA_MODEL")
        hf = self.model.tokenizer
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ModelError(f"embedding model {model!r} has no tokenizer.json-style (fast) tokenizer, which counting "
                             "and splitting in tokens need; give a model that has one with --model or QA_MODEL")
        tokens = Tokens(backend.to_str(), int(self.model.max_seq_length or 256), hf.pad_token_id or 0,
                        hf.pad_token or "[PAD]")
        super().__init__(model, "torch", device, batch_size or DEVICE_BATCH[device], int(dimension), tokens)
        import torch

        self._threads = torch.get_num_threads()
        self._table: np.ndarray | None = None

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        with self._lock:
            # A question or two runs fastest on one thread; spinning up the thread pool for it costs more than it
            # saves, and on a busy machine many times more (we measured 20 ms against 670 ms per query).
            torch.set_num_threads(1 if len(texts) <= SMALL_BATCH else self._threads)
            if len(texts) <= SMALL_BATCH:
                return self._few(texts)
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=progress)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.encoder != "torch":  # bfloat16's own normalisation leaves norms of 1 +- 0.004
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _few(self, texts: Sequence[str]) -> np.ndarray:
        """What ``model.encode`` gives for a question or two (the same vectors), by calling its modules directly:
        ``encode`` also sets eval mode and checks every parameter's device on each call: 26.0 -> 23.5 ms per query
        here (BENCHMARKS.md, "Follow-ups, word forms and years")."""
        import torch

        model = self.model
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        with torch.inference_mode():
            features = model.preprocess(list(texts), prompt=prompt)
            features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
            vectors = torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), p=2, dim=1)
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)

    def _token_pass(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[Offsets]]:
        import torch

        with self._lock:
            torch.set_num_threads(1 if len(texts) <= SMALL_BATCH else self._threads)
            # output_value=None: one dict of tensors per text (the library's overloads type it as another).
            outputs = cast("list[dict[str, torch.Tensor]]", self.model.encode(
                list(texts), batch_size=self.batch_size, output_value=None, show_progress_bar=False))
        # ``encode`` tokenizes with the transformers tokenizer, which gives no ranges: ours gives them (the same
        # tokens; encode_with_spans checks the counts).
        return (np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs]),  # padding left out:
                [o["token_embeddings"][:int(o["attention_mask"].sum())].float().cpu().numpy() for o in outputs],
                self.tokens.model_input(texts)[1])

    def _input_table(self) -> np.ndarray | None:
        if self._table is None:
            try:
                transformer = cast(Any, self.model[0]).auto_model  # a PreTrainedModel, untyped in torch's Module
                weight = transformer.get_input_embeddings().weight
            except (AttributeError, IndexError, KeyError, TypeError, NotImplementedError):
                return None  # a model built otherwise (a static-embedding model)
            self._table = weight.detach().float().cpu().numpy()
        return self._table


def model_inputs(title: str, sentences: Sequence[Span], chunks: Sequence[Chunk]
                 ) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """What the model reads for one article's chunks (each chunk's text with the title), and in each, the spans of
    the sentences that chunk is the first to hold: their vectors come from that chunk's pass (late chunking)."""
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    first_new = 0
    for c in chunks:
        text = c.embed_text(title)
        shift = len(text) - len(c.text) - c.start
        spans.append([(sentences[i].start + shift, sentences[i].end + shift)
                      for i in range(max(first_new, c.first_sentence), c.last_sentence + 1)])
        first_new = c.last_sentence + 1
        texts.append(text)
    return texts, spans


def embed_chunks(embedder: Embedder, texts: list[str], spans: list[list[tuple[int, int]]], progress: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Chunk vectors, and the vectors of all sentences (in order) pooled from the same pass of the model.

    Texts go to the model longest first, in groups (to bound the memory its token embeddings take): each batch
    then holds texts of nearly one length, so little of it is padding, as in one ``encode`` call of them all.
    """
    step = embedder.batch_size * 4
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunk_vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    pooled: list[np.ndarray] = [np.zeros((0, embedder.dimension), dtype=np.float32)] * len(texts)
    bar = None
    if progress and len(texts) > step:
        from qa.progress import bar as progress_bar

        bar = progress_bar(len(texts), "embedding", unit="chunk")
    for start in range(0, len(texts), step):
        group = order[start:start + step]
        vectors, spans_pooled = embedder.encode_with_spans([texts[i] for i in group], [spans[i] for i in group])
        chunk_vectors[group] = vectors
        for i, sentence_vectors in zip(group, spans_pooled, strict=True):
            pooled[i] = sentence_vectors
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return chunk_vectors, np.concatenate(pooled) if pooled else np.zeros((0, embedder.dimension), np.float32)
