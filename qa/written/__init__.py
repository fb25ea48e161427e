"""Written answers: a language model behind an OpenAI-compatible endpoint writes, every sentence is checked.

Optional (the ``[llm]`` extra, ``QA_LLM_URL``); with it unset the extractive answerer answers, as before.
:mod:`qa.written.prompt` is what the model is told, :mod:`qa.written.check` how its sentences are checked,
:mod:`qa.written.client` how it is reached, :mod:`qa.written.answerer` the order of it all, and
:mod:`qa.written.local` a llama.cpp server with a bundled small model for the tests and benchmarks.
"""

from qa.written.answerer import WrittenAnswerer
from qa.written.client import Endpoint, ModelUnavailable

__all__ = ["Endpoint", "ModelUnavailable", "WrittenAnswerer"]
