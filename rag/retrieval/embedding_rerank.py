"""The offline reranker: re-score the final node text with the embedding model.

No cross-encoder ships on PyPI, so by default the nodes that come out of window
replacement or auto-merging are scored again by cosine similarity between the question
and their *final* text (the whole window or the merged parent), not the small piece that
was originally matched. That is a real re-ordering: a sentence that matched well but
sits in an off-topic window drops, a merged parent is judged on its own text. The embedding
model reads at most its sequence limit (256 tokens for MiniLM), so a long merged parent is
judged on its beginning.
"""

from __future__ import annotations

from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rag.embedding import embed_texts


class EmbeddingRerank(BaseNodePostprocessor):
    top_n: int = Field(default=2, description="How many nodes to keep.")
    config: Any = Field(default=None, exclude=True, description="rag.config.Config of the embedding model.")

    @classmethod
    def class_name(cls) -> str:
        return "EmbeddingRerank"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if query_bundle is None or not nodes:
            return nodes[: self.top_n]
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        vectors = embed_texts(self.config, [query_bundle.query_str] + texts)
        scores = vectors[1:] @ vectors[0]
        rescored = [NodeWithScore(node=n.node, score=float(s)) for n, s in zip(nodes, scores)]
        rescored.sort(key=lambda n: n.score, reverse=True)
        return rescored[: self.top_n]
