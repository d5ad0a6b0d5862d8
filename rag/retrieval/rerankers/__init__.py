"""One module per bundled reranker; each defines ``PLUGIN = Reranker(...)``."""
