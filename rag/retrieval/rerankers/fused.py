"""Cosine of the final text (as ``embedding``) fused with the first stage's order by reciprocal rank."""

from functools import partial

from rag.retrieval.rerank import Reranker
from rag.retrieval.rerankers.embedding import make_embedding_rerank

PLUGIN = Reranker(name="fused", help="embedding rerank fused with the first-stage order (RRF)",
                  make=partial(make_embedding_rerank, fuse=True), order=1)
