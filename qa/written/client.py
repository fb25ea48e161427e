"""The language model's endpoint: any OpenAI-compatible chat server (llama-server, Ollama, vLLM, LM Studio, OpenAI).

Everything that can go wrong on the way (no server, a refused connection, an HTTP error, a timeout, a stream
that breaks off or is not one) becomes one :class:`ModelUnavailable` whose message is a single line saying what
happened and what to check; the answerer then shows the quotes instead.

The client is the official ``openai`` package (the ``[llm]`` extra), versions 1.55.3 to 3.x: the ones tested
(1.55.3, 1.109.1, 2.54.0, 3.63.0). Only what all of them share is used: ``openai.Timeout`` (an ``httpx.Timeout``
up to 2.x, an ``httpx2.Timeout`` in 3.x, which refuses the other), ``chat.completions.create(stream=True)``,
``models.list()`` and the ``APIStatusError``/``APIConnectionError``/``APITimeoutError`` classes.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from qa.config import LLMSettings
from qa.errors import ConfigError

if TYPE_CHECKING:
    import openai  # the [llm] extra: imported when first used (ChatClient._openai)
    from openai.types.chat import ChatCompletionMessageParam

#: Sampling: deterministic, so that the same question gets the same answer and the tests and benchmarks repeat.
TEMPERATURE = 0.0
#: The openai versions written answers are tested with (pyproject.toml's ``[llm]`` extra pins the same).
SUPPORTED_OPENAI = ">=1.55.3,<4"
NO_OPENAI = ("written answers (QA_LLM_URL) need the openai package, which is not installed: "
             "pip install -e '.[llm]' (or unset QA_LLM_URL for quoted answers)")


class ModelUnavailable(RuntimeError):
    """The endpoint did not give a usable answer; ``str()`` is the one-line notice shown to the reader."""


@dataclass(frozen=True)
class Endpoint:
    """Where the model is and how long an answer may take (``QA_LLM_*``, see :mod:`qa.config`)."""

    url: str
    model: str | None = None  # None: the first model the endpoint lists
    api_key: str | None = None
    timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> Endpoint | None:
        """The configured endpoint, or None when ``QA_LLM_URL`` is unset (quotes only)."""
        if not settings.url:
            return None
        if importlib.util.find_spec("openai") is None:  # say so now, not as a notice under every answer
            raise ConfigError(NO_OPENAI)
        return cls(settings.url.rstrip("/"), settings.model, settings.api_key, settings.timeout)


class ChatClient:
    """Streams chat completions from one :class:`Endpoint`. Safe to share between threads."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._client: openai.OpenAI | None = None
        self._model = endpoint.model
        self._lock = threading.Lock()

    def _openai(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError:
                    raise ModelUnavailable(NO_OPENAI + "; showing quotes") from None
                e = self.endpoint
                try:  # openai's own Timeout: the httpx it was built on (httpx, or httpx2 from 3.x)
                    self._client = openai.OpenAI(
                        base_url=e.url, api_key=e.api_key or "none", max_retries=0,
                        timeout=openai.Timeout(e.timeout, connect=min(e.timeout, 5.0)))
                except Exception as exc:  # noqa: BLE001 - an openai release this code does not know
                    raise ModelUnavailable(
                        f"the openai package {getattr(openai, '__version__', '?')} could not be used "
                        f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); written answers are tested "
                        f"with openai{SUPPORTED_OPENAI}: pip install -e '.[llm]'; showing quotes") from exc
            return self._client

    def model(self) -> str:
        """The model's name: as configured, else the first the endpoint lists (asked once)."""
        if self._model is None:
            try:
                listed = [m.id for m in self._openai().models.list()]
            except ModelUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a foreign server is a notice, not a crash
                raise ModelUnavailable(self._why(exc)) from exc
            if not listed:
                raise ModelUnavailable(f"the language model at {self.endpoint.url} lists no model; set QA_LLM_MODEL")
            self._model = listed[0]
        return self._model

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """The reply's text as it arrives, piece by piece; raises :class:`ModelUnavailable` on any failure."""
        deadline = time.monotonic() + self.endpoint.timeout
        model = self.model()
        try:
            response = self._openai().chat.completions.create(
                model=model, messages=cast("list[ChatCompletionMessageParam]", messages), stream=True,
                temperature=TEMPERATURE, max_tokens=max_tokens)
        except ModelUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(self._why(exc)) from exc
        pieces = 0
        try:
            with response:
                for chunk in response:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    choices = getattr(chunk, "choices", None)
                    if not isinstance(choices, list):
                        raise ModelUnavailable(self._malformed())
                    for choice in choices:
                        text = getattr(getattr(choice, "delta", None), "content", None)
                        if text is not None and not isinstance(text, str):
                            raise ModelUnavailable(self._malformed())
                        if text:
                            pieces += 1
                            yield text
        except ModelUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken stream, a timeout, JSON that is not a chunk
            raise ModelUnavailable(self._why(exc)) from exc
        if not pieces:
            raise ModelUnavailable(self._malformed())

    def _malformed(self) -> str:
        return (f"the language model at {self.endpoint.url} sent a reply that is not a chat stream (is QA_LLM_URL "
                "its OpenAI-compatible /v1 address?); showing quotes")

    def _why(self, exc: Exception) -> str:
        openai = sys.modules.get("openai")  # imported by _openai() before anything could fail
        if openai is None:
            return self._malformed()
        url = self.endpoint.url
        if isinstance(exc, (TimeoutError, openai.APITimeoutError)) or "timed out" in str(exc).lower():
            return (f"the language model at {url} did not answer within {self.endpoint.timeout:g} s "
                    "(QA_LLM_TIMEOUT); showing quotes")
        if isinstance(exc, openai.APIStatusError):
            hint = {401: "check QA_LLM_API_KEY", 403: "check QA_LLM_API_KEY",
                    404: "check QA_LLM_URL (it usually ends in /v1) and QA_LLM_MODEL"}.get(exc.status_code,
                                                                                         "see the server's log")
            return f"the language model at {url} answered HTTP {exc.status_code}; {hint}; showing quotes"
        if isinstance(exc, openai.APIConnectionError):
            return f"the language model at {url} could not be reached (is it running?) or broke off; showing quotes"
        return self._malformed()
