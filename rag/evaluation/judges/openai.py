"""``openai``: TruLens' own chain-of-thought LLM judges on the OpenAI API or an OpenAI-compatible
server (``judge_base_url``, ``judge_model``, ``judge_api_key`` / ``OPENAI_API_KEY``)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from rag.errors import ConfigError
from rag.evaluation.judges import Judge

OFFICIAL_API_HOST = "api.openai.com"


def is_official_api(base_url: str | None) -> bool:
    return not base_url or OFFICIAL_API_HOST in base_url


def judge_api_key(config: Any) -> str:
    """The judge's API key; required for the OpenAI API, optional for other compatible servers."""
    key = config.judge_api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if is_official_api(config.judge_base_url):
        raise ConfigError(
            "The OpenAI judge needs an API key: set OPENAI_API_KEY (or RAG_JUDGE_API_KEY / judge_api_key "
            "in the config), point RAG_JUDGE_BASE_URL at an OpenAI-compatible server, "
            "or use the offline judge (judge=\"local\", RAG_JUDGE=local)."
        )
    return "not-needed"  # vLLM, Ollama, llama.cpp server accept any key


def label(config: Any) -> str:
    text = f"openai:{config.judge_model}"
    if not is_official_api(config.judge_base_url):
        parsed = urlparse(config.judge_base_url)
        text += f"@{parsed.netloc or config.judge_base_url}"
    return text


def _make(config: Any, embed: Any) -> Any:
    from rag.evaluation.trulens.providers import openai_judge

    return openai_judge(config, api_key=judge_api_key(config), official=is_official_api(config.judge_base_url))


PLUGIN = Judge(name="openai", help="TruLens CoT judges on OpenAI or a compatible server (judge_base_url)",
               make=_make, label=label, order=3)
