"""hybrid: dense and BM25 rankings fused (weighted reciprocal rank fusion)."""

from typing import Any

from rag.retrieval import MODES
from rag.retrieval.mode import IndexParts, Mode

# Each ranking contributes this many candidates per final slot: a passage ranked low by one
# stage but high by the other still reaches the fusion.
CANDIDATES_PER_SLOT = 2


def _make(parts: IndexParts, params: dict[str, Any]) -> Any:
    from rag.retrieval.first_stage import FusionRetriever

    deeper = {**params, "top_k": params["top_k"] * CANDIDATES_PER_SLOT}
    return FusionRetriever([(MODES.get("dense").make(parts, deeper), params["dense_weight"]),
                            (MODES.get("bm25").make(parts, deeper), params["bm25_weight"])], top_k=params["top_k"])


PLUGIN = Mode(name="hybrid", help="dense + BM25, reciprocal rank fusion", make=_make, order=2)
