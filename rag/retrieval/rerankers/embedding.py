"""The default offline reranker: cosine between the question and each node's final text."""

from typing import Any

from rag.retrieval.rerank import Reranker


def _make(config: Any, top_n: int) -> Any:
    from rag.retrieval.embedding_rerank import EmbeddingRerank

    return EmbeddingRerank(config=config, top_n=top_n)


PLUGIN = Reranker(name="embedding", help="re-score the final text with the embedding model (default)",
                  make=_make, order=0)
