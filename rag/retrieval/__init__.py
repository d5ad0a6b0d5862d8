"""Stage 4: retrieval. Retriever kinds (one file each in ``kinds/``), rerankers (``rerankers/``),
retriever specs like ``sentence_window:window_size=1,top_k=4``, and the query engine."""

from rag.registry import Registry
from rag.retrieval.kind import RetrieverKind
from rag.retrieval.rerank import Reranker

RETRIEVER_KINDS: Registry[RetrieverKind] = Registry("retriever", "--retriever", "rag.retrieval.kinds")
RERANKERS: Registry[Reranker] = Registry("reranker", "reranker", "rag.retrieval.rerankers")

__all__ = ["RETRIEVER_KINDS", "RERANKERS", "RetrieverKind", "Reranker"]
