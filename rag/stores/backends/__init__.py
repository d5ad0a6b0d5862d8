"""One module per store backend; each defines ``PLUGIN = StorePlugin(...)`` and implements ``rag.stores.base.Store``."""
