"""The model's word-piece tokenizer, on Hugging Face's `tokenizers` alone (its tokenizer.json): no transformers, no
torch, so the exported encoders load in half a second (qa.encoders).

Two copies, each set up once and never changed: ``plain`` counts and splits text (no special tokens, no truncation,
no padding) and ``model`` makes the model's input (special tokens, truncation to the model's length, padding).
transformers' tokenizer instead switches padding and truncation on one shared object at every call, and a call
from another thread switched them mid-call: a question failed "Unable to create tensor", and an upload's token
counts, splits and offsets came back padded (tests/test_encoders.py, the two-thread test). Encoding with a copy
that is never changed is safe from many threads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Offsets", "Tokens"]

#: Each token's character range in its text.
Offsets = list[tuple[int, int]]


class Tokens:
    """Token counts, ranges and model inputs for one model's tokenizer (the JSON of its tokenizer.json)."""

    def __init__(self, spec: str, max_tokens: int, pad_id: int, pad_token: str, pad_to: int | None = None):
        from tokenizers import Tokenizer

        self.max_tokens = max_tokens
        self.plain = Tokenizer.from_str(spec)
        self.plain.no_truncation()
        self.plain.no_padding()
        self.model = Tokenizer.from_str(spec)
        self.model.enable_truncation(max_tokens)
        # Padded to the longest text of each batch (and to a multiple of ``pad_to``: OpenVINO's few input shapes).
        self.model.enable_padding(pad_id=pad_id, pad_token=pad_token, pad_to_multiple_of=pad_to)

    def count(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text has, without the model's special tokens."""
        return [len(e.ids) for e in self.plain.encode_batch(list(texts), add_special_tokens=False)]

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, without special tokens."""
        return [e.ids for e in self.plain.encode_batch(list(texts), add_special_tokens=False)]

    def offsets(self, text: str) -> Offsets:
        """The character range of each of the text's tokens, without special tokens."""
        return self.plain.encode(text, add_special_tokens=False).offsets

    def model_input(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[Offsets]]:
        """The model's inputs for a batch (input_ids, attention_mask, token_type_ids: int64, padded) and each text's
        token ranges as the model sees them (special tokens have empty ranges; padding left out)."""
        encodings = self.model.encode_batch(list(texts))
        feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        return feed, [e.offsets[:sum(e.attention_mask)] for e in encodings]
