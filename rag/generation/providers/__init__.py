"""One module per generator provider; each defines ``PLUGIN = Generator(...)``."""
