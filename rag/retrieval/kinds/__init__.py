"""One module per retriever kind; each defines ``PLUGIN`` (a :class:`rag.retrieval.kind.RetrieverKind`)."""
