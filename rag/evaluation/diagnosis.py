"""Why a wrong answer is wrong: the retriever missed the evidence, or the generator misread it.

A user who sees 5 of 12 wrong needs to know what to change. Each row with a reference answer
gets one of:

- ``right``: key-fact correctness >= ``RIGHT_AT``;
- ``abstained``: the answer declines ("could not find it in the documents");
- ``retrieval_miss``: the contexts the generator read do not hold the reference's key facts
  (pages alone are not enough: pruning or a cut can drop the sentence from a retrieved page);
- ``generation_miss``: every key fact is in the contexts, and the answer is still wrong;
- ``failed``: the question raised an error.

Without key facts in the reference (a free-text reference), the evidence pages decide where the
row has them (an evidence page among the contexts' pages counts as held); otherwise the row is
``unknown``. Rows without a reference answer get no diagnosis (None).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Sequence

from rag.evaluation.judges.lexical import is_refusal
from rag.evaluation.key_facts import check_fact, explicit_facts, mentions, reference_facts

RIGHT_AT = 0.5
MISSES = ("retrieval_miss", "generation_miss", "abstained")


def facts_held(contexts: Sequence[str], reference: str | None, key_facts: Sequence[str] | None = None,
               question: str | None = None) -> bool | None:
    """Whether the contexts state every key fact of the reference; None when there is no key fact.

    Only presence counts: the contexts are full of other rows' values, which are no contradiction here.
    """
    key = explicit_facts(key_facts) if key_facts else reference_facts(reference or "", question)[0]
    if not key:
        return None
    text = "\n".join(c for c in contexts if c)
    everything = mentions(text)  # every value in the contexts counts as known: nothing "contradicts"
    return all(check_fact(fact, text, everything, everything).status == "found" for fact in key)


def diagnose(answer: str | None, contexts: Sequence[str], reference: str | None, correctness: float | None,
             key_facts: Sequence[str] | None = None, question: str | None = None,
             evidence_hit: float | None = None, error: Any = None) -> str | None:
    """The row's diagnosis (see the module docstring); None without a reference answer or key facts."""
    if _present(error):
        return "failed"
    if not reference and not key_facts:
        return None
    if correctness is None or (isinstance(correctness, float) and math.isnan(correctness)):
        return None
    if correctness >= RIGHT_AT:
        return "right"
    if answer and is_refusal(answer):
        return "abstained"
    held = facts_held(contexts, reference, key_facts, question)
    if held is None and evidence_hit is not None and not math.isnan(evidence_hit):
        held = evidence_hit > 0
    if held is None:
        return "unknown"
    return "generation_miss" if held else "retrieval_miss"


def miss_counts(diagnoses: Iterable[str | None]) -> dict[str, int]:
    """How many rows of each miss kind (zeros included), for a version's summary."""
    counts = Counter(d for d in diagnoses if d)
    return {kind: counts.get(kind, 0) for kind in MISSES}


def miss_text(counts: dict[str, int]) -> str:
    """"2 retrieval misses, 1 generation miss" (empty when there is no miss)."""
    names = {"retrieval_miss": ("retrieval miss", "retrieval misses"),
             "generation_miss": ("generation miss", "generation misses"), "abstained": ("abstained", "abstained")}
    parts = [f"{n} {names[k][n != 1]}" for k, n in counts.items() if n]
    return ", ".join(parts)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""
