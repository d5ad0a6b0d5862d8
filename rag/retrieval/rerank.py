"""What a reranker is: a named factory of a LlamaIndex node postprocessor that keeps the best ``top_n``.

The bundled ones live in ``rag/retrieval/rerankers/``; any other ``reranker`` setting is taken
as a sentence-transformers CrossEncoder name or path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Reranker:
    name: str
    help: str
    # (config, top_n, index parts or None) -> postprocessor, or None to keep retrieval order
    make: Callable[[Any, int, Any], Any]
    order: int = 100


def cross_encoder(name: str, top_n: int) -> Any:
    from llama_index.core.postprocessor import SentenceTransformerRerank

    from rag.errors import ModelUnavailableError

    try:
        return SentenceTransformerRerank(model=name, top_n=top_n, device="cpu")
    except OSError as exc:
        raise ModelUnavailableError(
            f"Cannot load cross-encoder {name!r}: {exc}. Give a local path, or reranker=embedding."
        ) from None
