"""Stage 4: retrieval. Retriever kinds (one file each in ``kinds/``), first-stage modes (``modes/``),
rerankers (``rerankers/``),
retriever specs like ``sentence_window:window_size=1,top_k=4``, and the query engine."""

import rag.registry
from rag.registry import Registry
from rag.retrieval.kind import RetrieverKind
from rag.retrieval.mode import Mode
from rag.retrieval.rerank import Reranker

RETRIEVER_KINDS: Registry[RetrieverKind] = rag.registry.RETRIEVER_KINDS
RERANKERS: Registry[Reranker] = Registry("reranker", "reranker", "rag.retrieval.rerankers")
MODES: Registry[Mode] = Registry("first-stage mode", "mode", "rag.retrieval.modes")

__all__ = ["RETRIEVER_KINDS", "RERANKERS", "MODES", "RetrieverKind", "Reranker", "Mode"]
