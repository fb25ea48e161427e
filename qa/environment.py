"""The ``QA_*`` environment variables (listed in :mod:`qa.config`) read into settings: for the entry points only.

``qa`` (:mod:`qa.cli`), ``python app.py`` (:mod:`qa.web.cli`) and the benchmarks call these with ``os.environ``;
the library takes the settings objects they return and never reads the environment itself
(tests/test_imports.py checks that nothing else imports this module). A value that cannot be used raises
:class:`qa.errors.ConfigError`, whose message names the variable and the fix; the entry point decides how to
exit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.config import (
    DEFAULT_BACKEND,
    DEFAULT_ENCODER,
    DEFAULT_MODEL,
    DEFAULT_PORT,
    DEVICE_BATCH,
    ENCODERS,
    LLMSettings,
    MilvusSettings,
    Settings,
    WebSettings,
    default_encoder_cache,
    is_local_model,
    parse_auth,
    parse_port,
)
from qa.errors import ConfigError


def settings_from_env(env: Mapping[str, str], **overrides: Any) -> Settings:
    """Defaults, then ``QA_*`` variables of ``env``, then the non-None ``overrides`` (the flags): fields of
    :class:`Settings` by name, those of its :class:`LLMSettings` as ``llm_<name>`` (``llm_url``...)."""
    read = _Reader(env)
    milvus = MilvusSettings(
        uri=env.get("QA_MILVUS_URI", ""),
        token=env.get("QA_MILVUS_TOKEN", ""),
        prefix=env.get("QA_MILVUS_PREFIX", MilvusSettings.prefix),
        index=env.get("QA_MILVUS_INDEX", MilvusSettings.index).upper(),
        timeout=float(read.whole("QA_MILVUS_TIMEOUT", int(MilvusSettings.timeout))),
    )
    llm = LLMSettings(
        url=env.get("QA_LLM_URL", "").strip() or None,
        model=env.get("QA_LLM_MODEL", "").strip() or None,
        api_key=env.get("QA_LLM_API_KEY", "").strip() or None,
        timeout=read.seconds("QA_LLM_TIMEOUT", LLMSettings.timeout),
    )
    batch_size = env.get("QA_BATCH_SIZE", "").strip()
    settings = Settings(
        corpus=Path(env.get("QA_CORPUS", "corpus")),
        index=Path(env.get("QA_INDEX", "index")),
        model=env.get("QA_MODEL", Settings.model),
        chunk_tokens=read.whole("QA_CHUNK_TOKENS", Settings.chunk_tokens),
        overlap=read.whole("QA_OVERLAP", Settings.overlap),
        batch_size=read.whole("QA_BATCH_SIZE", 32) if batch_size else None,
        device=read.choice("QA_DEVICE", tuple(DEVICE_BATCH)),
        encoder=read.choice("QA_ENCODER", ENCODERS, "unset it for the index's own (new indexes: "
                            + DEFAULT_ENCODER + " on the CPU)"),
        encoder_cache=Path(env["QA_ENCODER_CACHE"]).expanduser() if env.get("QA_ENCODER_CACHE", "").strip()
        else default_encoder_cache(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME", "").strip() else None,
        backend=env.get("QA_BACKEND", "").strip() or DEFAULT_BACKEND,
        exact_limit=read.whole("QA_EXACT_LIMIT", Settings.exact_limit),
        follow_links=read.whole("QA_FOLLOW_LINKS", 0) != 0,
        milvus=milvus,
        llm=llm,
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    llm_given = {key.removeprefix("llm_"): given.pop(key) for key in list(given) if key.startswith("llm_")}
    for key in ("corpus", "index"):
        if key in given:
            given[key] = Path(given[key])
    return replace(settings, **given, llm=replace(settings.llm, **llm_given))


def web_settings_from_env(env: Mapping[str, str]) -> WebSettings:
    """Defaults, then ``QA_HOST``, ``QA_PORT``, ``QA_AUTH``, ``QA_WEB_SECRET``, ``QA_TRUSTED_PROXIES``."""
    try:
        port = parse_port(env.get("QA_PORT") or str(DEFAULT_PORT))
    except ValueError as exc:
        raise ConfigError(f"QA_PORT: {exc}") from None
    try:
        auth = parse_auth(env["QA_AUTH"]) if env.get("QA_AUTH") else None
    except ValueError as exc:
        raise ConfigError(f"QA_AUTH: {exc}") from None
    proxies = ",".join(p.strip() for p in env.get("QA_TRUSTED_PROXIES", "").split(",") if p.strip())
    secret = env.get("QA_WEB_SECRET") or WebSettings.secret
    return WebSettings(env.get("QA_HOST") or WebSettings.host, port, auth, secret, proxies)


def configure_offline(model: str = DEFAULT_MODEL, env: MutableMapping[str, str] | None = None) -> None:
    """Keep Hugging Face libraries off the network unless the user chose a hub model.

    Called by the entry points (the app, the CLI, the benchmarks) and the tests before any model is loaded, on
    ``env`` (default: this process's environment, which those libraries read). A value the user already set
    wins, so ``HF_HUB_OFFLINE=0`` still lets a hub model download.
    """
    env = os.environ if env is None else env
    if is_local_model(model):
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Reader:
    """Typed values of ``env``; ConfigError for one that is set but not usable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def whole(self, name: str, default: int) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            example = default or 32
            raise ConfigError(f"{name}={raw!r} is not a whole number; unset it or give e.g. {name}={example}") from None

    def choice(self, name: str, choices: tuple[str, ...],
               unset: str = "unset it to use what torch finds") -> str | None:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return None
        if raw not in choices:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}; {unset}")
        return raw

    def seconds(self, name: str, default: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            raise ConfigError(f"{name}={raw!r} is not a number of seconds; unset it or give e.g. {name}={default:g}")
        return value
