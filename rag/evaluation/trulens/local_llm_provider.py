"""TruLens' own LLM feedback functions (the course's chain-of-thought judges) on a local GGUF model.

TruLens' ``LLMProvider`` builds the prompts and parses the scores and reasons; this provider only
answers its chat requests with the in-process llama.cpp engine. Checked against trulens-feedback
2.16: subclasses implement ``_create_chat_completion(prompt=None, messages=None, ...) -> str`` and
hand an ``Endpoint`` for pacing and retries.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pydantic

from rag.evaluation.trulens.session import quiet_trulens_logs

quiet_trulens_logs()
from trulens.core.feedback.endpoint import Endpoint  # noqa: E402
from trulens.feedback.llm_provider import LLMProvider  # noqa: E402

# Enough for TruLens' "Criteria / Supporting Evidence / Score" answers; longer ones get cut.
MAX_JUDGE_TOKENS = 256


class LocalLLMProvider(LLMProvider):
    """``LocalLLMProvider(engine, model_name)`` with ``engine.chat(messages, max_tokens=..., temperature=...)``."""

    _engine: Any = pydantic.PrivateAttr(default=None)

    def __init__(self, engine: Any, model_name: str, **kwargs: Any):
        endpoint = Endpoint(name=f"local-llm:{model_name}", rpm=1_000_000)  # no pacing for an in-process model
        super().__init__(model_engine=model_name, endpoint=endpoint, **kwargs)
        self._engine = engine

    def _create_chat_completion(self, prompt: Optional[str] = None, messages: Optional[Sequence[dict]] = None,
                                response_format: Any = None, **kwargs: Any) -> str:
        chat = list(messages) if messages else [{"role": "user", "content": prompt or ""}]
        result = self._engine.chat([{"role": m["role"], "content": m["content"]} for m in chat],
                                   max_tokens=int(kwargs.get("max_tokens") or MAX_JUDGE_TOKENS),
                                   temperature=float(kwargs.get("temperature") or 0.0))
        return result["choices"][0]["message"]["content"] or ""
