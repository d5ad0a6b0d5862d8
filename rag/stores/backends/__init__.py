"""One module per store backend; each defines ``PLUGIN = Store(...)``."""
