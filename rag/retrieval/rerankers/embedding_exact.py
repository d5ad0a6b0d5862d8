"""Like ``embedding``, but embeds each final text at query time (slower; the reference it is measured against)."""

from functools import partial

from rag.retrieval.rerank import Reranker
from rag.retrieval.rerankers.embedding import make_embedding_rerank

PLUGIN = Reranker(name="embedding-exact", help="re-score final texts by embedding them at query time",
                  make=partial(make_embedding_rerank, exact=True), order=2)
