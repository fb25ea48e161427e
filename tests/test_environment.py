"""qa.environment: the QA_* variables read into settings objects, for the entry points; errors are ConfigErrors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.config import LLMSettings, MilvusSettings, Settings, WebSettings
from qa.environment import configure_offline, settings_from_env, web_settings_from_env
from qa.errors import ConfigError, QAError


def test_no_variables_are_the_defaults():
    assert settings_from_env({}) == Settings() and web_settings_from_env({}) == WebSettings()


def test_each_part_gets_its_own_settings_and_flags_win():
    env = {"QA_INDEX": "/tmp/i", "QA_CHUNK_TOKENS": "64", "QA_MILVUS_URI": "http://m:19530", "QA_MILVUS_INDEX": "hnsw",
           "QA_LLM_URL": "http://l/v1", "QA_LLM_TIMEOUT": "5"}
    settings = settings_from_env(env, index="elsewhere", llm_model="m", llm_timeout=None)
    assert (settings.index, settings.chunk_tokens) == (Path("elsewhere"), 64)
    assert settings.milvus == MilvusSettings(uri="http://m:19530", index="HNSW")
    assert settings.llm == LLMSettings(url="http://l/v1", model="m", timeout=5.0)


@pytest.mark.parametrize("env", [{"QA_OVERLAP": "one"}, {"QA_DEVICE": "tpu"}, {"QA_LLM_TIMEOUT": "-1"},
                                 {"QA_MILVUS_TIMEOUT": "soon"}])
def test_a_bad_value_is_a_config_error_naming_it(env):
    with pytest.raises(ConfigError, match=next(iter(env))) as raised:
        settings_from_env(env)
    assert isinstance(raised.value, QAError)


def test_a_bad_web_value_is_a_config_error():
    with pytest.raises(ConfigError, match="QA_PORT"):
        web_settings_from_env({"QA_PORT": "http"})
    with pytest.raises(ConfigError, match="QA_AUTH"):
        web_settings_from_env({"QA_AUTH": "nopassword"})


def test_offline_is_set_on_the_environment_given():
    env: dict[str, str] = {"HF_HUB_OFFLINE": "0"}
    before = dict(os.environ)
    configure_offline("all-MiniLM-L6-v2", env)
    assert env == {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    assert dict(os.environ) == before
