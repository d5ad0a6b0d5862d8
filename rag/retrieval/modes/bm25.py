"""bm25: lexical match of the question's terms (exact names, numbers, rare words)."""

from rag.retrieval.mode import Mode


def _make(parts, params):
    from rag.retrieval.first_stage import LexicalRetriever

    return LexicalRetriever(parts.lexical, parts.storage.docstore, params["top_k"])


PLUGIN = Mode(name="bm25", help="BM25 term match", make=_make, order=1)
