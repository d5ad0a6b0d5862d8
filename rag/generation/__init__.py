"""Stage 5: the LLM that writes answers, by the ``llm_provider`` setting (one module each in
``providers/``), and the citing synthesizer that prompts it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from rag.errors import ConfigError
import rag.registry
from rag.registry import Registry, model_name


@dataclass(frozen=True)
class Generator:
    """A generator provider: ``make(config)`` builds the LlamaIndex LLM."""

    name: str
    help: str
    make: Callable[[Any], Any]
    default_model: str | None = None  # used when llm_model is not set
    local_weights: bool = False  # its model is a file `rag models pull` fetches
    order: int = 100


GENERATORS: Registry[Generator] = rag.registry.GENERATORS


def make_llm(config: Any) -> Any:
    return GENERATORS.get(config.llm_provider).make(config)


def generator_label(config: Any) -> str:
    """The generator's model name without folders or spaces: part of every evaluated app version."""
    from pathlib import Path

    model = model_name(config)
    if model and Path(model).suffix == ".gguf":
        model = Path(model).name
    return str(model or config.llm_provider).replace(" ", "_")


def api_key(configured: str | None, required: bool, what: str) -> str | None:
    key = configured or os.environ.get("OPENAI_API_KEY")
    if required and not key:
        raise ConfigError(
            f"{what} needs an API key: set OPENAI_API_KEY (or RAG_LLM_API_KEY / RAG_JUDGE_API_KEY), "
            "or use the offline default (RAG_LLM_PROVIDER=local)."
        )
    return key
