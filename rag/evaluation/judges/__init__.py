"""The judges of the RAG triad, by name (the ``judge`` setting; one module each in this folder).

A judge scores three things, each as ``(score in [0, 1], reason)`` with ``score >= 0.5``
meaning relevant / grounded:

- ``context_relevance(question, context)``
- ``groundedness(contexts: list[str], answer)``
- ``answer_relevance(question, answer)``

Evaluation hands judges to TruLens through :mod:`rag.evaluation.trulens`; ``rag judge``
calls them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rag.registry import Registry

Embed = Callable[[list[str]], Any]  # texts -> L2-normalised rows

# Bump when a judge scores differently: cached judgements are keyed on it, so none is reused across it.
JUDGES_VERSION = 7  # 2: groundedness claim by claim against its evidence; relevance sees the answer; 3: list items
# are claims; 4: a table row's evidence includes the prose introducing its table; 5: evidence ranked by the share
# of the claim's own numbers (not the question's) a unit holds, groundedness refitted; 6: source lists, plans
# ("To determine ..., we need to look at ...") and "the answer is:" are no claims; the unit holding a claim's numbers
# is always in its evidence; a number inside a range cell must count the same thing; 7: a pruned context's gap
# mark ends a sentence (two sentences from apart in the document were one evidence unit); each claim is checked
# with the question above its evidence when the question is known


@dataclass(frozen=True)
class Judge:
    name: str
    help: str
    make: Callable[[Any, Embed], Any]  # (config, embed) -> object with the three methods above
    label: Callable[[Any], str] | None = None  # stable name stored with every score; default: name
    order: int = 100

    def label_for(self, config: Any) -> str:
        return self.label(config) if self.label else self.name


JUDGES: Registry[Judge] = Registry("judge", "judge", "rag.evaluation.judges")


def accepts(judge: Any, method: str, parameter: str) -> bool:
    """Whether ``judge.<method>`` takes ``parameter`` (context relevance ``answer=``, groundedness ``question=``)."""
    import inspect

    function = getattr(judge, method, None)
    if function is None:
        return False
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def accepts_answer(judge: Any) -> bool:
    return accepts(judge, "context_relevance", "answer")


def accepts_question(judge: Any) -> bool:
    return accepts(judge, "groundedness", "question")


def make_judge(config: Any, name: str | None = None, embed: Embed | None = None) -> Any:
    """The judge named ``name`` (default ``config.judge``), using ``embed`` or the judge embedder (``judge_embed_model``)."""
    from rag.embedding import judge_embedder

    entry = JUDGES.get(name or config.judge)
    return entry.make(config, embed or judge_embedder(config))


def judge_label(config: Any, name: str | None = None) -> str:
    return JUDGES.get(name or config.judge).label_for(config)
