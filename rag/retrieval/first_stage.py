"""The first stage of every retriever kind, by ``mode``: dense vectors, BM25, or both fused.

Window replacement, auto-merging and reranking then work on whatever this stage returns.
Hybrid uses weighted reciprocal rank fusion: a node's score is the sum over the two rankings
of ``weight / (RRF_K + rank)``; it needs no score calibration between cosine and BM25.
"""

from __future__ import annotations

from typing import Any, List

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag.retrieval.mode import IndexParts

RRF_K = 60  # the constant of Cormack et al. (2009); flattens the weight of the very top ranks


class LexicalRetriever(BaseRetriever):
    """Top-k embedded nodes by BM25, looked up in the docstore."""

    def __init__(self, lexical: Any, docstore: Any, top_k: int):
        super().__init__()
        self.lexical, self.docstore, self.top_k = lexical, docstore, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = self.lexical.search(query_bundle.query_str, self.top_k)
        return [NodeWithScore(node=self.docstore.get_node(node_id), score=score) for node_id, score in hits]


class FusionRetriever(BaseRetriever):
    """Weighted reciprocal rank fusion of several retrievers' rankings; keeps the best ``top_k``."""

    def __init__(self, retrievers: list[tuple[BaseRetriever, float]], top_k: int):
        super().__init__()
        self.retrievers, self.top_k = retrievers, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        scores: dict[str, float] = {}
        nodes: dict[str, Any] = {}
        for retriever, weight in self.retrievers:
            for rank, hit in enumerate(retriever.retrieve(query_bundle), start=1):
                node_id = hit.node.node_id
                nodes.setdefault(node_id, hit.node)
                scores[node_id] = scores.get(node_id, 0.0) + weight / (RRF_K + rank)
        best = sorted(scores, key=scores.get, reverse=True)[: self.top_k]
        return [NodeWithScore(node=nodes[i], score=scores[i]) for i in best]
