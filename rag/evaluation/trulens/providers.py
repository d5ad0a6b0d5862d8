"""Judges as TruLens feedback providers, and TruLens' OpenAI provider as a judge.

Our judges (:mod:`rag.evaluation.judges`) return ``(score, reason)``; :class:`JudgeProvider`
exposes them under the method names of TruLens' LLM providers that the course uses, so one set
of metric definitions (:mod:`rag.evaluation.trulens.recording`) works with any judge:

- ``context_relevance_with_cot_reasons(question, context)``
- ``groundedness_measure_with_cot_reasons(source, statement)``
- ``relevance_with_cot_reasons(prompt, response)``

each returning ``(score in [0, 1], {"reason": text})``, which TruLens stores as the score and
the explanation shown in the dashboard. A judge that *is* a TruLens provider (the OpenAI one)
carries it as ``trulens_provider`` and is handed to TruLens as it is.
"""

from __future__ import annotations

from typing import Any, Sequence

import pydantic

from rag.evaluation.judges import accepts_answer, accepts_question
from rag.evaluation.trulens.session import quiet_trulens_logs

quiet_trulens_logs()  # before TruLens' import-time checks log their noise
from trulens.core import Provider  # noqa: E402


class JudgeProvider(Provider):
    """A TruLens provider over one of our judges."""

    _judge: Any = pydantic.PrivateAttr(default=None)

    def __init__(self, judge: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self._judge = judge

    @property
    def judge(self) -> Any:
        return self._judge

    def context_relevance(self, question: str, context: str, answer: str | None = None) -> float:
        return self.context_relevance_with_cot_reasons(question, context, answer)[0]

    def context_relevance_with_cot_reasons(self, question: str, context: str,
                                           answer: str | None = None) -> tuple[float, dict[str, str]]:
        """The judge's context relevance; judges that can also see the answer are given it."""
        if answer is not None and accepts_answer(self._judge):
            score, reason = self._judge.context_relevance(question, _text(context), answer=answer or "")
        else:
            score, reason = self._judge.context_relevance(question, _text(context))
        return _clip(score), {"reason": reason}

    def groundedness_measure(self, source: str | Sequence[str], statement: str, question: str | None = None) -> float:
        return self.groundedness_measure_with_cot_reasons(source, statement, question)[0]

    def groundedness_measure_with_cot_reasons(self, source: str | Sequence[str], statement: str,
                                              question: str | None = None) -> tuple[float, dict[str, str]]:
        """The judge's groundedness; judges that can also read the question are given it."""
        contexts = [source] if isinstance(source, str) else [_text(s) for s in (source or [])]
        if question is not None and accepts_question(self._judge):
            score, reason = self._judge.groundedness(contexts, statement or "", question=question)
        else:
            score, reason = self._judge.groundedness(contexts, statement or "")
        return _clip(score), {"reason": reason}

    def relevance(self, prompt: str, response: str) -> float:
        return self.relevance_with_cot_reasons(prompt, response)[0]

    def relevance_with_cot_reasons(self, prompt: str, response: str) -> tuple[float, dict[str, str]]:
        score, reason = self._judge.answer_relevance(prompt, response or "")
        return _clip(score), {"reason": reason}


def provider_for(judge: Any) -> Any:
    """The TruLens provider to record with: the judge's own, or our adapter."""
    return getattr(judge, "trulens_provider", None) or JudgeProvider(judge)


class ProviderJudge:
    """A TruLens LLM provider seen as one of our judges (``rag judge`` with ``--judge openai``)."""

    threshold = 0.5

    def __init__(self, provider: Any):
        self.trulens_provider = provider

    def context_relevance(self, question: str, context: str) -> tuple[float, str]:
        return _pair(self.trulens_provider.context_relevance_with_cot_reasons(question, context))

    def groundedness(self, contexts: list[str] | str, answer: str) -> tuple[float, str]:
        source = "\n\n".join(contexts) if isinstance(contexts, list) else contexts
        return _pair(self.trulens_provider.groundedness_measure_with_cot_reasons(
            source, answer, groundedness_configs=no_download_groundedness()))

    def answer_relevance(self, question: str, answer: str) -> tuple[float, str]:
        return _pair(self.trulens_provider.relevance_with_cot_reasons(question, answer))


def no_download_groundedness() -> Any:
    """TruLens' default sentence splitting calls nltk.download() (network) on every call; let the
    judge LLM split the answer into statements instead."""
    from trulens.core.metric.metric import GroundednessConfigs

    return GroundednessConfigs(use_sent_tokenize=False, filter_trivial_statements=False)


def _reason(meta: Any) -> str:
    """TruLens' reasons: ``{"reason": ...}`` from our judges, ``{"reasons": [...]}`` from its groundedness."""
    if not isinstance(meta, dict):
        return str(meta or "")
    if meta.get("reason"):
        return str(meta["reason"])
    reasons = meta.get("reasons")
    if isinstance(reasons, list):
        return "\n".join(f"{r.get('criteria', '')}: {r.get('supporting_evidence', '')}".strip()
                         if isinstance(r, dict) else str(r) for r in reasons)
    return ""


def openai_judge(config: Any, api_key: str, official: bool) -> ProviderJudge:
    """TruLens' ``OpenAI`` provider for the OpenAI API or an OpenAI-compatible server.

    For a server other than api.openai.com the Responses API is switched off: TruLens 2.16
    tries ``/v1/responses`` first for structured output and does not fall back to chat
    completions on a plain 404, so servers that only implement ``/v1/chat/completions``
    (vLLM, Ollama, llama.cpp) would fail every judgment.
    """
    from trulens.providers.openai import OpenAI

    kwargs: dict[str, Any] = {"api_key": api_key, "timeout": config.request_timeout}
    if config.judge_base_url:
        kwargs["base_url"] = config.judge_base_url
    provider = OpenAI(model_engine=config.judge_model, **kwargs)
    _set_capabilities(provider, official)
    return ProviderJudge(provider)


def _set_capabilities(provider: Any, official: bool) -> None:
    """TruLens 2.16's private capability cache (keyed by model name) is its only switch for this."""
    if not official:
        provider._set_capabilities({"responses_api": False, "structured_outputs": False, "cfg": False})
    elif not provider._structured_output_supported():
        # gpt-3.5 / gpt-4 (the course's judge) have no structured outputs: go straight to chat completions.
        provider._set_capabilities({"structured_outputs": False, "cfg": False})


def _pair(result: Any) -> tuple[float, str]:
    if isinstance(result, tuple):
        score, meta = result
        return _clip(score), _reason(meta)
    return _clip(result), ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _clip(score: Any) -> float:
    return float(min(max(float(score), 0.0), 1.0))
