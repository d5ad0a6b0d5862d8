"""One module per bundled embedding model; each defines ``PLUGIN = Embedder(...)``."""
