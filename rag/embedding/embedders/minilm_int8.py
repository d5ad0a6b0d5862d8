"""all-MiniLM-L6-v2 from the bundled weights, run by ONNX Runtime with int8 weights (faster on CPU)."""

from pathlib import Path
from typing import Any

from rag.embedding import Embedder
from rag.embedding.embedders.minilm import PLUGIN as MINILM


def _load(config: Any) -> Any:
    from rag.embedding.function_embedding import FunctionEmbedding
    from rag.embedding.onnx_runtime import OnnxEncoder
    from rag.errors import ModelUnavailableError
    from rag.threads import model_threads

    try:
        encoder = OnnxEncoder(MINILM.model_path(), Path(config.model_cache_dir), model_threads(config.embed_threads))
    except ImportError as exc:
        raise ModelUnavailableError(f"embed_model minilm-int8 needs onnx and onnxruntime ({exc.name} is missing): "
                                    "pip install onnx onnxruntime") from None
    return FunctionEmbedding(encoder, model_name="minilm-int8", embed_batch_size=config.embed_batch_size)


def _prepare(config: Any) -> str:
    from rag.embedding.onnx_runtime import cached_onnx

    return str(cached_onnx(MINILM.model_path(), Path(config.model_cache_dir)))


PLUGIN = Embedder(name="minilm-int8", help="all-MiniLM-L6-v2 on ONNX Runtime, int8 (exported from the bundled weights)",
                  description="all-MiniLM-L6-v2 int8 (384-d)", model_path=MINILM.model_path, load=_load, order=1,
                  prepare=_prepare)
