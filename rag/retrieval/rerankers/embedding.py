"""The default offline reranker: cosine between the question and each node's final text, from stored vectors."""

from typing import Any

from rag.retrieval.rerank import Reranker


def make_embedding_rerank(config: Any, top_n: int, parts: Any = None, exact: bool = False, fuse: bool = False) -> Any:
    from rag.retrieval.embedding_rerank import EmbeddingRerank

    return EmbeddingRerank(config=config, top_n=top_n, parts=parts, exact=exact, fuse=fuse)


PLUGIN = Reranker(name="embedding", help="re-score final texts by embedding similarity, from stored vectors (default)",
                  make=make_embedding_rerank, order=0)
