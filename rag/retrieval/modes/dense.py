"""dense: nearest neighbours of the question's embedding (FAISS / pgvector)."""

from rag.retrieval.mode import Mode


def _make(parts, params):
    return parts.index.as_retriever(similarity_top_k=params["top_k"])


PLUGIN = Mode(name="dense", help="embedding similarity", make=_make, order=0)
