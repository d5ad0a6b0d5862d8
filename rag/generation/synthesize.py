"""Stage 5: write the answer from numbered sources, citing them, and nothing else."""

from __future__ import annotations

from typing import Any, Sequence

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.prompts import PromptTemplate
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.schema import MetadataMode

from rag.errors import ConfigError, InputError

NO_ANSWER = "The provided documents do not contain the answer."
TEMPLATE_RESERVE = 200  # tokens for the template's own words and the chat template's markers
MIN_SOURCE_TOKENS = 16  # a source cut shorter than this is left out rather than cited

# The first prompt (kept as "strict" for comparison): small models took its abstention sentence
# as the safe reply and abstained on answerable questions, also when the evidence was there.
STRICT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given to you. "
    "Cite the sources you used with their numbers in square brackets, like [1] or [2]. "
    "If the sources do not contain the answer, say exactly: "
    f"\"{NO_ANSWER}\" Do not use outside knowledge."
)
# The default, chosen with bench/generators.py. An exact abstention sentence in the instructions made
# Qwen2.5-Coder-1.5B abstain on every question, even with the answer in a two-line context; asking it
# to "say you could not find it" kept it answering (0 of 6 answerable questions abstained), and "do not
# guess" made it invent less for questions the sources do not cover (2 of 3 against 3 of 3).
SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer the question from the numbered sources and cite them like [1]. "
    "Do not guess: if the sources do not state the answer, say you could not find it in the documents."
)
# The previous default, without "do not guess".
PLAIN_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer the question from the numbered sources and cite them like [1]. "
    "If the sources do not cover the question, say you could not find it in the documents."
)
QUESTION_TEMPLATE = PromptTemplate("Sources:\n{context}\n\nQuestion: {question}\nAnswer:")
# The first template, used with the strict prompt.
STRICT_QUESTION_TEMPLATE = PromptTemplate(
    "Sources:\n{context}\n\n"
    "Question: {question}\n"
    "Answer briefly from the sources above, with citations like [1]."
)
PROMPTS = {"default": (SYSTEM_PROMPT, QUESTION_TEMPLATE), "plain": (PLAIN_SYSTEM_PROMPT, QUESTION_TEMPLATE),
           "strict": (STRICT_SYSTEM_PROMPT, STRICT_QUESTION_TEMPLATE)}


class CitingSynthesizer(BaseSynthesizer):
    """One LLM call over numbered chunks; the context is trimmed to fit the model's window."""

    def __init__(self, llm: Any, context_window: int, max_new_tokens: int, system_prompt: str = SYSTEM_PROMPT,
                 **kwargs: Any):
        super().__init__(llm=llm, empty_response=NO_ANSWER, **kwargs)
        self._context_window = context_window
        self._max_new_tokens = max_new_tokens
        self._template = QUESTION_TEMPLATE
        self._system = PromptTemplate(system_prompt)

    def _get_prompts(self) -> dict[str, Any]:
        return {"question_template": self._template, "system_prompt": self._system}

    def _update_prompts(self, prompts: dict[str, Any]) -> None:
        if "question_template" in prompts:
            self._template = prompts["question_template"]
        if "system_prompt" in prompts:
            self._system = prompts["system_prompt"]

    def messages(self, question: str, chunks: Sequence[str]) -> list[ChatMessage]:
        return self.prompt(question, chunks)[0]

    def prompt(self, question: str, chunks: Sequence[str]) -> tuple[list[ChatMessage], int]:
        """The chat messages and how many of ``chunks`` they number (the first ones, the last maybe cut).

        The system prompt and the question are never cut: a question longer than half of what is
        left after the system prompt and the answer is refused (InputError), so it cannot push
        every source out of the prompt. Sources fill the rest, in rank order.
        """
        system = self._system.get_template()
        room = self._context_window - self._max_new_tokens - TEMPLATE_RESERVE - self._count(system)
        if room < 2 * MIN_SOURCE_TOKENS:
            raise ConfigError(
                f"context_window={self._context_window} leaves no room for sources after max_new_tokens="
                f"{self._max_new_tokens} and the instructions: raise context_window or lower max_new_tokens."
            )
        asked, limit = self._count(question), room // 2
        if asked > limit:
            raise InputError(
                f"The question is too long: about {asked} tokens, and at most {limit} fit beside the sources "
                f"(context_window={self._context_window}). Shorten it, or raise context_window."
            )
        budget = room - asked
        numbered, used = [], 0
        for i, chunk in enumerate(chunks, start=1):
            block = f"[{i}] {chunk.strip()}"
            cost = self._count(block)
            if used + cost > budget:
                # Keep the beginning of the chunk that does not fit, in proportion to what is left,
                # unless too little is left for it to be worth citing.
                left = budget - used
                block = block[: int(len(block) * left / max(cost, 1))] if left >= MIN_SOURCE_TOKENS else ""
                if block:
                    numbered.append(block)
                break
            numbered.append(block)
            used += cost
        context = "\n\n".join(numbered)
        messages = [
            ChatMessage(role=MessageRole.SYSTEM, content=system),
            ChatMessage(role=MessageRole.USER, content=self._template.format(context=context, question=question)),
        ]
        return messages, len(numbered)

    def synthesize(self, query: Any, nodes: Sequence[Any], additional_source_nodes: Any = None,
                   **kwargs: Any) -> Response | StreamingResponse:
        """One chat call over the numbered nodes; the response's metadata has ``usage`` and ``finish_reason``
        (for a streaming synthesizer, filled in when the last token has been read). Its source nodes
        are the ones the prompt shows, and only those: what did not fit is not claimed as a source."""
        question = query if isinstance(query, str) else query.query_str
        if not nodes:
            return Response(NO_ANSWER, source_nodes=[], metadata={"usage": {}, "finish_reason": None})
        chunks = [n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes]
        messages, shown = self.prompt(question, chunks)
        sources = list(nodes)[:shown]
        if self._streaming:
            return self._stream(messages, sources, left_out=len(nodes) - shown)
        response = self._llm.chat(messages)
        extra = getattr(response, "additional_kwargs", None) or {}
        return Response((response.message.content or "").strip() or NO_ANSWER, source_nodes=sources,
                        metadata={"usage": token_usage(extra), "sources_left_out": len(nodes) - shown,
                                  "finish_reason": extra.get("finish_reason") or _raw_finish_reason(response.raw)})

    def _stream(self, messages: list[ChatMessage], sources: list[Any], left_out: int) -> StreamingResponse:
        metadata: dict[str, Any] = {"usage": {}, "finish_reason": None, "sources_left_out": left_out}

        def tokens():
            text = ""
            for response in self._llm.stream_chat(messages):
                extra = getattr(response, "additional_kwargs", None) or {}
                if extra.get("finish_reason") or extra.get("prompt_tokens"):
                    metadata["usage"] = token_usage(extra)
                    metadata["finish_reason"] = extra.get("finish_reason") or _raw_finish_reason(response.raw)
                # Some LLMs give only the text so far, without the delta.
                content = response.message.content or ""
                delta = response.delta if response.delta is not None else content[len(text):]
                text += delta
                if delta:
                    yield delta

        return StreamingResponse(response_gen=tokens(), source_nodes=sources, metadata=metadata)

    def get_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        response = self._llm.chat(self.messages(query_str, text_chunks))
        return (response.message.content or "").strip() or NO_ANSWER

    async def aget_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        response = await self._llm.achat(self.messages(query_str, text_chunks))
        return (response.message.content or "").strip() or NO_ANSWER

    def _count(self, text: str) -> int:
        counter = getattr(self._llm, "count_tokens", None)
        return counter(text) if counter else len(text) // 4 + 1


def token_usage(extra: dict[str, Any]) -> dict[str, int]:
    """Token counts from an LLM response's ``additional_kwargs`` (our LLMs and OpenAI's both fill them)."""
    prompt = int(extra.get("prompt_tokens", 0) or 0)
    completion = int(extra.get("completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _raw_finish_reason(raw: Any) -> str | None:
    """``choices[0].finish_reason`` of an OpenAI-style raw response (object or dict), if any."""
    try:
        choice = (raw["choices"] if isinstance(raw, dict) else raw.choices)[0]
        return choice["finish_reason"] if isinstance(choice, dict) else choice.finish_reason
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
