"""No reranking: the retriever's order, cut to ``top_n`` by the engine."""

from rag.retrieval.rerank import Reranker

PLUGIN = Reranker(name="none", help="keep the retriever's order", make=lambda config, top_n, parts=None: None, order=1)
