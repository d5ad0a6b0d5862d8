"""In-process fakes of the embedder and the LLM for the unit tier (never used by the package).

- :class:`HashEmbedding`: bag-of-words hashed into 64 dimensions, so texts sharing words are close.
- :class:`EchoLLM`: answers with the first sentence of source [1] and cites it; counts tokens as words.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Sequence

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, CompletionResponse, LLMMetadata,
                                              MessageRole)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

DIM = 64


def hash_vector(text: str) -> list[float]:
    vector = np.zeros(DIM)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).tolist()


class HashEmbedding(BaseEmbedding):
    def _get_query_embedding(self, query: str) -> list[float]:
        return hash_vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return hash_vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return hash_vector(query)


def hash_embed(texts: list[str]) -> np.ndarray:
    return np.asarray([hash_vector(t) for t in texts], dtype="float32")


PROMPTS: list[list[str]] = []  # every chat call's message texts, for tests to inspect


class EchoLLM(CustomLLM):

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=2048, num_output=64, is_chat_model=True, model_name="echo")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        PROMPTS.append([m.content for m in messages])
        user = messages[-1].content or ""
        match = re.search(r"\[1\] (.+?[.!?])", user, re.S)
        text = (match.group(1).strip() + " [1]") if match else "The provided documents do not contain the answer."
        extra = {"prompt_tokens": self.count_tokens(user), "completion_tokens": len(text.split()),
                 "finish_reason": "stop"}
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), additional_kwargs=extra)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.chat([ChatMessage(role=MessageRole.USER, content=prompt)]).message.content)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)
