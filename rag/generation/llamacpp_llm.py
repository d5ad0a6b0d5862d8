"""A LlamaIndex LLM over the in-process llama.cpp engine: chat, completion and real token streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field

from rag.generation.llamacpp_engine import LlamaCppEngine, get_engine

# Roles a chat template knows; anything else (LlamaIndex's "chatbot", "model", "developer") is mapped.
_ROLES = {MessageRole.SYSTEM: "system", MessageRole.USER: "user", MessageRole.ASSISTANT: "assistant",
          MessageRole.TOOL: "tool", MessageRole.CHATBOT: "assistant", MessageRole.MODEL: "assistant",
          MessageRole.DEVELOPER: "system"}


class LlamaCppLLM(CustomLLM):
    """``chat``/``complete`` and their streams; ``complete(prompt)`` is a one-message chat.

    Each response's ``additional_kwargs`` has ``prompt_tokens``, ``completion_tokens`` and
    ``finish_reason`` ("stop" or "length"); ``raw`` is llama.cpp's own dict (with its timings).
    Keyword arguments ``max_tokens``, ``temperature``, ``stop`` and ``seed`` override per call.
    """

    gguf_path: str = Field(description="Path of the GGUF file.")
    threads: int = Field(default=1, ge=1, description="CPU threads generating tokens (see rag/threads.py).")
    prompt_threads: int | None = Field(default=None, ge=1, description="CPU threads reading the prompt (default: threads).")
    context_window: int = Field(default=4096, gt=0)
    max_new_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.1, ge=0.0)
    seed: int = Field(default=0, ge=0, description="Sampling seed: the same prompt gives the same answer.")

    @classmethod
    def class_name(cls) -> str:
        return "LlamaCppLLM"

    @property
    def engine(self) -> LlamaCppEngine:
        # Shared per process by file and settings, so copies of this object load nothing twice.
        return get_engine(self.gguf_path, threads=self.threads, batch_threads=self.prompt_threads,
                          context_window=self.context_window)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.max_new_tokens, is_chat_model=True,
                           model_name=Path(self.gguf_path).name)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream(messages, kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        response = self._chat([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw,
                                  additional_kwargs=response.additional_kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        stream = self._stream([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)

        def gen() -> CompletionResponseGen:
            for response in stream:
                yield CompletionResponse(text=response.message.content or "", delta=response.delta, raw=response.raw,
                                         additional_kwargs=response.additional_kwargs)

        return gen()

    # The public methods above carry the instrumentation; these do the work, so that complete()
    # is not reported twice (as a completion and as the chat inside it).
    def _chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        result = self.engine.chat(_messages(messages), **self._options(kwargs))
        content = result["choices"][0]["message"]["content"] or ""
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=content), raw=result,
                            additional_kwargs=_accounting(result))

    def _stream(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponseGen:
        chunks = self.engine.stream_chat(_messages(messages), **self._options(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for chunk in chunks:
                choice = chunk["choices"][0] if chunk.get("choices") else {}
                delta = (choice.get("delta") or {}).get("content") or ""
                final = bool(choice.get("finish_reason"))
                if not delta and not final:  # the opening role-only chunk
                    continue
                text += delta
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta,
                                   raw=chunk, additional_kwargs=_accounting(chunk) if final else {})

        return gen()

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"max_tokens": kwargs.get("max_tokens", self.max_new_tokens),
                "temperature": kwargs.get("temperature", self.temperature),
                "stop": kwargs.get("stop"), "seed": kwargs.get("seed", self.seed)}


def _messages(messages: Sequence[ChatMessage]) -> list[dict]:
    return [{"role": _ROLES.get(m.role, "user"), "content": m.content or ""} for m in messages]


def _accounting(result: dict) -> dict[str, Any]:
    usage = result.get("usage") or {}
    return {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "finish_reason": result["choices"][0].get("finish_reason")}
