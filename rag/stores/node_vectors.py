"""The stored vectors of an index's embedded nodes, looked up by node id (for reranking without re-embedding)."""

from __future__ import annotations

from typing import Any


class NodeVectors:
    def __init__(self, ids: list[str], matrix: Any):
        self.row = {node_id: i for i, node_id in enumerate(ids)}
        self.matrix = matrix  # (len(ids), dim) float32, rows normalised; may be a memory map

    def get(self, node_ids: list[str]) -> Any:
        """Rows of ``node_ids`` in order; KeyError when one has no stored vector."""
        import numpy as np

        return np.asarray(self.matrix[[self.row[i] for i in node_ids]], dtype="float32")
