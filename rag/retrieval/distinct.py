"""Drop candidates that repeat one ranked above them: identical text, text contained in it, or (for
sentence windows) a window that shares at least half of its sentences with a better-ranked window.

Sentence windows of neighbouring sentences overlap, and often the same window comes back for
two matched sentences; without this, the LLM (and the retrieval metrics) would get nearly the
same passage twice in the few slots it has.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rag.retrieval.members import members

OVERLAP = 0.5  # a window sharing this share of its sentences with a kept one adds too little


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class DistinctText(BaseNodePostprocessor):
    docstore: Any = Field(default=None, exclude=True, description="Docstore to find a window's sentences.")

    @classmethod
    def class_name(cls) -> str:
        return "DistinctText"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        kept: list[NodeWithScore] = []
        texts: list[str] = []
        for node in nodes:
            text = _norm(node.node.get_content(metadata_mode=MetadataMode.NONE))
            if any(text in seen for seen in texts) or self._mostly_shown(node, kept):
                continue
            # A longer passage that contains earlier ones replaces them, at the best rank among them.
            covered = [i for i, seen in enumerate(texts) if seen in text]
            if covered:
                first = covered[0]
                kept[first] = NodeWithScore(node=node.node, score=kept[first].score)
                texts[first] = text
                for i in reversed(covered[1:]):
                    del kept[i], texts[i]
                continue
            kept.append(node)
            texts.append(text)
        return kept

    def _mostly_shown(self, node: NodeWithScore, kept: list[NodeWithScore]) -> bool:
        if self.docstore is None or "window" not in node.node.metadata:
            return False
        try:
            mine = set(members(node.node, self.docstore))
            shown = {m for k in kept if "window" in k.node.metadata for m in members(k.node, self.docstore)}
        except KeyError:
            return False
        return len(mine & shown) >= OVERLAP * len(mine)
