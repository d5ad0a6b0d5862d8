"""``llamacpp``: kept for configurations written before llama.cpp became the local engine; same as ``local``."""

from rag.generation import Generator
from rag.generation.providers.local import DEFAULT_MODEL, make_local_llm

PLUGIN = Generator(name="llamacpp", help="same as local (a GGUF path in llm_model)", make=make_local_llm,
                   default_model=DEFAULT_MODEL, local_weights=True, order=3)
