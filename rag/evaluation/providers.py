"""TruLens feedback providers: the offline judge and the OpenAI / OpenAI-compatible judge.

Both expose the method names of TruLens' LLM providers that the course uses, so one set of
metric definitions (:mod:`rag.evaluation.recording`) works with either:

- ``context_relevance_with_cot_reasons(question, context)``
- ``groundedness_measure_with_cot_reasons(source, statement)``
- ``relevance_with_cot_reasons(prompt, response)``

each returning ``(score in [0, 1], {"reason": text})``, which TruLens stores as the score and
the explanation shown in the dashboard.

This module imports TruLens: import it lazily (``rag`` itself stays fast to import).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import numpy as np
import pydantic

from rag.config import Config
from rag.errors import ConfigError
from rag.evaluation.recording import quiet_trulens_logs

quiet_trulens_logs()  # before TruLens' import-time checks log their noise
from trulens.core import Provider  # noqa: E402

OFFICIAL_API_HOST = "api.openai.com"


class LocalProvider(Provider):
    """Offline TruLens provider: :class:`~rag.evaluation.local_judge.LocalJudge` (MiniLM + text statistics).

    ``LocalProvider(embed)`` with ``embed(list[str]) -> L2-normalised rows``, or
    ``LocalProvider(config=config)`` to use the configured embedding model.
    """

    judge_label: str = "local"

    _judge: Any = pydantic.PrivateAttr(default=None)

    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None = None, *, config: Config | None = None,
                 judge: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if judge is None:
            from rag.evaluation.local_judge import LocalJudge

            if embed is None:
                from rag.models import embed_texts

                embed = functools.partial(embed_texts, config or Config.load())
            judge = LocalJudge(embed)
        self._judge = judge

    @property
    def judge(self) -> Any:
        return self._judge

    # ---------------------------------------------------------- context relevance
    def context_relevance(self, question: str, context: str) -> float:
        return self.context_relevance_with_cot_reasons(question, context)[0]

    def context_relevance_with_cot_reasons(self, question: str, context: str) -> tuple[float, dict[str, str]]:
        score, reason = self._judge.context_relevance(question, _text(context))
        return _clip(score), {"reason": reason}

    # ---------------------------------------------------------- groundedness
    def groundedness_measure(self, source: str | Sequence[str], statement: str) -> float:
        return self.groundedness_measure_with_cot_reasons(source, statement)[0]

    def groundedness_measure_with_cot_reasons(self, source: str | Sequence[str],
                                              statement: str) -> tuple[float, dict[str, str]]:
        contexts = [source] if isinstance(source, str) else [_text(s) for s in (source or [])]
        score, reason = self._judge.groundedness(contexts, statement or "")
        return _clip(score), {"reason": reason}

    # ---------------------------------------------------------- answer relevance
    def relevance(self, prompt: str, response: str) -> float:
        return self.relevance_with_cot_reasons(prompt, response)[0]

    def relevance_with_cot_reasons(self, prompt: str, response: str) -> tuple[float, dict[str, str]]:
        score, reason = self._judge.answer_relevance(prompt, response or "")
        return _clip(score), {"reason": reason}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _clip(score: Any) -> float:
    return float(min(max(float(score), 0.0), 1.0))


# ---------------------------------------------------------------- OpenAI judge

def judge_api_key(config: Config) -> str:
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


def is_official_api(base_url: str | None) -> bool:
    return not base_url or OFFICIAL_API_HOST in base_url


def openai_provider(config: Config, model: str | None = None):
    """TruLens' ``OpenAI`` provider for the OpenAI API or an OpenAI-compatible server.

    Uses ``config.judge_model``, ``config.judge_base_url`` and ``config.judge_api_key``
    (falling back to ``OPENAI_API_KEY``). For a server other than api.openai.com the
    Responses API is switched off: TruLens tries ``/v1/responses`` first for structured
    output and does not fall back to chat completions on a plain 404, so servers that only
    implement ``/v1/chat/completions`` (vLLM, Ollama, llama.cpp) would fail every judgment.
    """
    key = judge_api_key(config)
    from trulens.providers.openai import OpenAI

    kwargs: dict[str, Any] = {"api_key": key, "timeout": config.request_timeout}
    if config.judge_base_url:
        kwargs["base_url"] = config.judge_base_url
    provider = OpenAI(model_engine=model or config.judge_model, **kwargs)
    if not is_official_api(config.judge_base_url):
        # The capability cache is TruLens' switch for this (keyed by model name).
        provider._set_capabilities({"responses_api": False, "structured_outputs": False, "cfg": False})
    elif not provider._structured_output_supported():
        # gpt-3.5 / gpt-4 (the course's judge) have no structured outputs: go straight to chat completions.
        provider._set_capabilities({"structured_outputs": False, "cfg": False})
    return provider


def judge_label(config: Config, judge: str) -> str:
    """Short, stable name of a judge, part of every app version so scores of different judges never mix."""
    if judge == "local":
        return "local"
    if judge == "openai":
        label = f"openai:{config.judge_model}"
        if not is_official_api(config.judge_base_url):
            from urllib.parse import urlparse

            parsed = urlparse(config.judge_base_url)
            label += f"@{parsed.netloc or config.judge_base_url}"
        return label
    raise ConfigError(f"Unknown judge {judge!r}: use \"local\" (offline) or \"openai\" (OpenAI or compatible server).")


def make_provider(config: Config, judge: str, embed: Callable[[list[str]], np.ndarray] | None = None):
    """The provider for ``judge`` ("local" or "openai")."""
    judge_label(config, judge)  # validates the name
    if judge == "local":
        return LocalProvider(embed, config=config)
    return openai_provider(config)
