"""What an index is made of: which nodes a retriever kind builds (``ParserSpec``), the nodes of one
document (``ParsedNodes``), and the text of a node that is embedded and searched by BM25.

Ingestion builds them (``rag.ingest.parse``), stores keep them, retrieval reads them: they live here,
below all three."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

# Bump when node contents or metadata change, so cached nodes are rebuilt.
NODE_FORMAT = 5  # 3: sentence-window pages span the window; 4: table rows as lines (TEXT_FORMAT 2);
# 5: title and section heading path in the metadata that is embedded (rag.ingest.sections)


@dataclass(frozen=True)
class ParserSpec:
    """Which nodes to build: a retriever kind and the parameters that shape its nodes."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, kind: str, params: dict[str, Any]) -> "ParserSpec":
        return cls(kind, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())))

    @property
    def key(self) -> str:
        """Stable short id, used for cache and index folder names."""
        blob = json.dumps([NODE_FORMAT, self.kind, self.params], sort_keys=True, default=list)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params}}


@dataclass
class ParsedNodes:
    """All nodes of one document for one spec; ``embed`` marks the ones that get vectors."""

    nodes: list[BaseNode]
    embed: list[bool]


def embedded_text(node: Any) -> str:
    """The text a node's vector is made from (and what BM25 indexes): llama_index's MetadataMode.EMBED."""
    return node.get_content(metadata_mode="embed")
