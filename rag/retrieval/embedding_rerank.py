"""The offline reranker: re-score each node's *final* text (the whole sentence window, the merged
parent) against the question, not the small piece that was matched.

No cross-encoder ships on PyPI, so the score is a cosine with the embedding model. The final
texts are not embedded at query time: their vector is the normalised mean of the stored vectors
of the embedded nodes they are made of (a window's sentences, a parent's leaves), so a rerank
costs one question embedding and a dot product. ``exact=True`` embeds the final texts instead
(slower; what the benchmark compares the mean against). ``fuse=True`` keeps the first stage's
order in play: the cosine ranking and the incoming ranking are fused by reciprocal rank. A node whose parts have no stored
vector falls back to embedding its text.
"""

from __future__ import annotations

from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.postprocessor.types import BaseNodePostprocessor

from rag.embedding import embed_query, embed_texts
from rag.retrieval.members import members


class EmbeddingRerank(BaseNodePostprocessor):
    top_n: int = Field(default=2, description="How many nodes to keep.")
    config: Any = Field(default=None, exclude=True, description="rag.config.Config of the embedding model.")
    parts: Any = Field(default=None, exclude=True, description="IndexParts with stored vectors and docstore.")
    exact: bool = Field(default=False, description="Embed the final texts instead of averaging stored vectors.")
    fuse: bool = Field(default=False, description="Fuse the cosine ranking with the incoming order (RRF).")

    @classmethod
    def class_name(cls) -> str:
        return "EmbeddingRerank"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        import numpy as np

        if query_bundle is None or not nodes:
            return nodes[: self.top_n]
        # The dense first stage already embedded the question into the bundle: reuse it.
        question = np.asarray(query_bundle.embedding, dtype="float32") if query_bundle.embedding is not None \
            else embed_query(self.config, query_bundle.query_str)
        vectors = [None if self.exact else self._stored_vector(n.node) for n in nodes]
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            texts = [nodes[i].node.get_content(metadata_mode=MetadataMode.EMBED) for i in missing]
            for i, row in zip(missing, embed_texts(self.config, texts)):
                vectors[i] = row
        scores = np.stack(vectors) @ question
        if self.fuse:  # the first stage's order (e.g. BM25's evidence) keeps a say
            from rag.retrieval.first_stage import RRF_K

            by_cosine = {i: rank for rank, i in enumerate(np.argsort(-scores), start=1)}
            scores = [1 / (RRF_K + i + 1) + 1 / (RRF_K + by_cosine[i]) for i in range(len(nodes))]
        rescored = [NodeWithScore(node=n.node, score=float(s)) for n, s in zip(nodes, scores)]
        rescored.sort(key=lambda n: n.score, reverse=True)
        return rescored[: self.top_n]

    # ------------------------------------------------------------ vectors of final texts
    def _stored_vector(self, node: Any):
        import numpy as np

        if self.parts is None or self.parts.vectors is None:
            return None
        try:
            rows = self.parts.vectors.get(members(node, self.parts.storage.docstore))
        except KeyError:
            return None
        mean = rows.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm else None
