"""The first stage of every retriever kind, by ``mode``: dense vectors, BM25, or both fused.

Window replacement, auto-merging and reranking then work on whatever this stage returns.
Hybrid uses weighted reciprocal rank fusion: a node's score is the sum over the two rankings
of ``weight / (RRF_K + rank)``; it needs no score calibration between cosine and BM25.
With ``hops=2`` a second search follows the first (:class:`SecondHopRetriever`).
"""

from __future__ import annotations

from typing import Any, List

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rag.retrieval.mode import IndexParts

RRF_K = 60  # the constant of Cormack et al. (2009); flattens the weight of the very top ranks
HOP_WORDS = 200  # at most this many of the first passage's new words go into the second query
_PUNCTUATION = "\"'()[]{}.,;:!?"


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
        rankings = [(retriever.retrieve(query_bundle), weight) for retriever, weight in self.retrievers]
        return fuse(rankings)[: self.top_k]


def fuse(rankings: list[tuple[List[NodeWithScore], float]]) -> List[NodeWithScore]:
    """Weighted reciprocal rank fusion: every node of any ranking, best fused score first."""
    scores: dict[str, float] = {}
    nodes: dict[str, Any] = {}
    for ranking, weight in rankings:
        for rank, hit in enumerate(ranking, start=1):
            node_id = hit.node.node_id
            nodes.setdefault(node_id, hit.node)
            scores[node_id] = scores.get(node_id, 0.0) + weight / (RRF_K + rank)
    best = sorted(scores, key=scores.get, reverse=True)
    return [NodeWithScore(node=nodes[i], score=scores[i]) for i in best]


class SecondHopRetriever(BaseRetriever):
    """Two searches for questions whose evidence is spread over passages that name each other.

    The first search ranks as usual; its top passage stays first. A second search then looks for
    that passage's words that the question does not contain (what leads on to the next passage,
    e.g. the director a film's paragraph names), and the two rankings are fused by reciprocal
    rank. Measured on HotpotQA in bench/retrieval_modes.py (README, "Retrieval by first-stage mode").
    """

    def __init__(self, base: BaseRetriever, top_k: int):
        super().__init__()
        self.base, self.top_k = base, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        first = self.base.retrieve(query_bundle)
        if not first:
            return first
        seed = first[0]
        asked = {_word(w) for w in query_bundle.query_str.split()}
        new = [w for w in seed.node.get_content(metadata_mode=MetadataMode.NONE).split() if _word(w) not in asked]
        if not new:
            return first[: self.top_k]
        second = self.base.retrieve(QueryBundle(" ".join(new[:HOP_WORDS])))
        fused = fuse([(first, 1.0), (second, 1.0)])
        rest = [hit for hit in fused if hit.node.node_id != seed.node.node_id]
        return [seed, *rest][: self.top_k]


def _word(token: str) -> str:
    return token.strip(_PUNCTUATION).lower()
