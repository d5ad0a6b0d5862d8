"""Context pruning: keep the sentences and table rows of the final contexts that bear on the
question, up to a token budget for all contexts together.

Prompt reading is most of a local model's time, and the distractors it reads are where a small
model picks the wrong number. Each context is cut into units (``rag.text_units``), every unit is
scored by cosine with the question (the index's embedding model; a unit's vector is computed
once per process and shared by every version that shows it), and the best units are kept, in
score order, while they fit. A kept table row brings the short line that heads its table, and a
sentence that opens with a reference back ("This", "It" ...) brings the sentence before it, so
each kept unit still reads sensibly. Contexts keep their rank order and their units their
document order; "…" marks what was left out, and a context with no unit kept is dropped.
Running headers and footers are left out whatever the budget. (A relevance floor, leaving out
units far below the best even when they fit, lost HotpotQA answers: the second hop's sentence
rarely resembles the question. bench/context_pruning.py.) Contexts that fit the budget as they
are pass unchanged.
"""

from __future__ import annotations

import re
import threading
from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rag.text_units import GAP, ROW_MARK, split_paragraphs

CHARS_PER_TOKEN = 4  # about, for English with the Qwen and MiniLM tokenizers; numbers cost a little more
SEPARATOR_TOKENS = 2  # a unit's share of the line breaks and gap marks around it
HEADING_WORDS = 15  # a prose unit this short just above a table row is its caption or section heading
PAGE_MARK = re.compile(r"\bpage \d+( of \d+)?\W*$", re.IGNORECASE)
REFERS_BACK = re.compile(r"^(this|that|these|those|it|its|they|their|such|he|she|the above)\b", re.IGNORECASE)
_CACHE_SIZE = 50_000

_vectors: dict[tuple[str, str], Any] = {}
_vectors_lock = threading.Lock()


def approx_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


class ContextPruner(BaseNodePostprocessor):
    budget: int = Field(default=400, description="Tokens (about) for all contexts together.")
    config: Any = Field(default=None, exclude=True, description="rag.config.Config of the embedding model.")

    @classmethod
    def class_name(cls) -> str:
        return "ContextPruner"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        if query_bundle is None or not nodes or sum(approx_tokens(t) for t in texts) <= self.budget:
            return nodes
        units = [Unit(i, p, k, text) for i, t in enumerate(texts)
                 for p, paragraph in enumerate(split_paragraphs(t)) for k, text in enumerate(paragraph)]
        if not units:
            return nodes
        scores = self._vectors([u.text for u in units]) @ self._question(query_bundle)
        for i in boilerplate(units):
            units[i].boilerplate = True
        chosen = choose(units, scores, self.budget)
        out = []
        for i, node in enumerate(nodes):
            kept = [u for u in units if u.node == i and id(u) in chosen]
            if not kept:
                continue
            copy = node.node.model_copy(deep=True)
            copy.set_content(join(kept, [u for u in units if u.node == i]))
            out.append(NodeWithScore(node=copy, score=node.score))
        return out

    def _question(self, bundle: QueryBundle):
        import numpy as np

        from rag.embedding import embed_query

        if bundle.embedding is not None:  # the dense first stage embedded it already
            return np.asarray(bundle.embedding, dtype="float32")
        return embed_query(self.config, bundle.query_str)

    def _vectors(self, texts: list[str]):
        import numpy as np

        from rag.embedding import embed_texts

        model = self.config.embed_model
        with _vectors_lock:
            known = {t: _vectors[(model, t)] for t in set(texts) if (model, t) in _vectors}
        missing = sorted(set(texts) - set(known))
        if missing:
            # One text per call: the int8 embedder quantises a batch as a whole, so a unit's vector moved
            # with its batch mates (cosine 0.992), and which units were cached already decided the batches:
            # an answer then depended on the questions asked before it in the process.
            rows = [embed_texts(self.config, [text])[0] for text in missing]
            known.update(zip(missing, rows))
            with _vectors_lock:
                if len(_vectors) + len(missing) > _CACHE_SIZE:  # bounded: a long-running server stays small
                    _vectors.clear()
                _vectors.update({(model, t): row for t, row in zip(missing, rows)})
        return np.stack([known[t] for t in texts])


class Unit:
    """One sentence or table row: which context, which paragraph in it, which place in that."""

    __slots__ = ("node", "paragraph", "place", "text", "boilerplate")

    def __init__(self, node: int, paragraph: int, place: int, text: str):
        self.node, self.paragraph, self.place, self.text = node, paragraph, place, text
        self.boilerplate = False  # a running header or footer: never kept

    @property
    def is_row(self) -> bool:
        return ROW_MARK in self.text


def choose(units: list[Unit], scores: Any, budget: int) -> set[int]:
    """ids of the units kept: the best first, each with the unit it needs to make sense, while the
    budget lasts (the best one always, so no question is left with nothing)."""
    chosen: set[int] = set()
    used = 0
    for index in sorted(range(len(units)), key=lambda i: -float(scores[i])):
        if units[index].boilerplate:
            continue
        wanted = [u for u in (units[index], needed_before(units, index)) if u is not None and id(u) not in chosen]
        cost = sum(approx_tokens(u.text) + SEPARATOR_TOKENS for u in wanted)
        if chosen and used + cost > budget:
            continue  # a shorter unit further down may still fit
        chosen.update(id(u) for u in wanted)
        used += cost
    return chosen


def boilerplate(units: list[Unit]) -> list[int]:
    """Running headers and footers: a page number at the end, or the same line with other digits
    elsewhere in the contexts. They name the document, so they look relevant to every question."""
    shapes: dict[str, set[str]] = {}
    for unit in units:
        shapes.setdefault(re.sub(r"\d+", "#", unit.text), set()).add(unit.text)
    return [i for i, u in enumerate(units)
            if PAGE_MARK.search(u.text) or len(shapes[re.sub(r"\d+", "#", u.text)]) > 1]


def needed_before(units: list[Unit], index: int) -> Unit | None:
    """The unit that ``units[index]`` needs to be read: the heading above a table row, or the
    sentence before one that refers back to it."""
    unit = units[index]
    if unit.is_row:
        for before in reversed(units[:index]):
            if before.node != unit.node:
                return None
            if before.boilerplate:  # a footer between a table's rows across a page break
                continue
            if not before.is_row:
                return before if len(before.text.split()) <= HEADING_WORDS else None
        return None
    if unit.place > 0 and REFERS_BACK.match(unit.text):
        return units[index - 1]
    return None


def join(kept: list[Unit], units: list[Unit]) -> str:
    """The kept units of one context in document order: rows a line each, a paragraph's sentences
    on one line, and a gap mark wherever units were left out."""
    ids = {id(u) for u in kept}
    lines: list[str] = []
    current: list[str] = []
    last = -1  # place in ``units`` of the previous kept unit
    for place, unit in enumerate(units):
        if id(unit) not in ids:
            continue
        gap = place != last + 1
        if current and (gap or unit.paragraph != units[last].paragraph):
            lines.append(" ".join(current))
            current = []
        if gap:
            lines.append(GAP)
        current.append(unit.text)
        last = place
    lines.append(" ".join(current))
    if last != len(units) - 1:
        lines.append(GAP)
    return "\n".join(lines)
