"""The offline default: a GGUF model run in-process by llama.cpp (``xllamacpp``).

``llm_model`` is a catalogue name (``rag models list``), a local ``.gguf`` path, or ``hf:REPO/FILE``
where a hub is reachable.
"""

from pathlib import Path
from typing import Any

from rag.generation import Generator, model_name

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def make_local_llm(config: Any) -> Any:
    from rag.generation.catalogue import resolve_gguf
    from rag.generation.llamacpp_engine import engine_threads
    from rag.generation.llamacpp_llm import LlamaCppLLM

    path = resolve_gguf(model_name(config) or DEFAULT_MODEL, Path(config.model_cache_dir), fetch=True, progress=True)
    threads = engine_threads(config)
    return LlamaCppLLM(gguf_path=str(path), threads=threads["threads"], prompt_threads=threads["batch_threads"],
                       context_window=config.context_window,
                       max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                       seed=config.seed)


PLUGIN = Generator(name="local", help="llama.cpp in-process: a catalogue model or a GGUF path (default)",
                   make=make_local_llm, default_model=DEFAULT_MODEL, local_weights=True, order=0)
