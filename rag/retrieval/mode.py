"""What a first-stage mode is, and what a store hands it (kept free of heavy imports: the CLI
lists the modes without loading LlamaIndex)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class IndexParts:
    """What a store loads for one node set: the vector index, its storage (docstore), the BM25
    index of its embedded nodes and their stored vectors (see the stores' ``lexical`` / ``node_vectors``)."""

    index: Any
    storage: Any
    lexical: Any
    vectors: Any


@dataclass(frozen=True)
class Mode:
    name: str
    help: str
    make: Callable[[IndexParts, dict[str, Any]], Any]  # (index parts, kind params) -> a LlamaIndex retriever
    order: int = 100
