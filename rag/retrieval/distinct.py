"""Drop candidates whose text repeats one ranked above them: identical, or contained in it.

Sentence windows of neighbouring sentences overlap, and often the same window comes back for
two matched sentences; without this, the LLM (and the retrieval metrics) would get the same
passage twice in the few slots it has.
"""

from __future__ import annotations

import re
from typing import List, Optional

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class DistinctText(BaseNodePostprocessor):
    @classmethod
    def class_name(cls) -> str:
        return "DistinctText"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        kept: list[NodeWithScore] = []
        texts: list[str] = []
        for node in nodes:
            text = _norm(node.node.get_content(metadata_mode=MetadataMode.NONE))
            if any(text in seen for seen in texts):
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
