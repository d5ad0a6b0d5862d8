"""The run checks itself: how many answers were right by their key facts, and where a judge disagrees.

An answer counts as *right* when its key-fact ``correctness`` is at least ``RIGHT_AT`` (0.5):
key-fact correctness is 1.0 when every key fact is stated and at most 0.3 when one is missing
or contradicted (see :mod:`rag.evaluation.key_facts`), so 0.5 separates the two; a reference
without key facts scores token recall, and there 0.5 means half the reference's words.

A judge *disagrees* on a row when it passes a wrong answer (its score >= ``JUDGE_PASS``, 0.5)
or fails a right one (score < 0.5); answer relevance only when it fails a right answer (a wrong
answer may well address the question). Groundedness and answer relevance are checked; context
relevance judges the retrieved contexts, not the answer, so it is not. A flagged row is a place
to look: the judge may be wrong, or the reference (a grounded answer from other pages can
still miss the reference's fact).

    report = results.agreement()
    print(report.to_string())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from rag.evaluation.diagnosis import RIGHT_AT, diagnose, miss_counts, miss_text

if TYPE_CHECKING:
    import pandas as pd

JUDGE_PASS = 0.5
JUDGES = ("groundedness", "answer_relevance")
# Judges of whether the answer is on the question, not whether it is right: only failing a right answer is a miss.
ON_TOPIC_ONLY = frozenset({"answer_relevance"})


@dataclass(frozen=True)
class Tally:
    version: str
    retriever: str
    right: int
    scored: int  # answers with a correctness value
    unscored: int = 0  # answers without one (failed, or no reference)
    misses: dict[str, int] = field(default_factory=dict)  # wrong answers by cause (rag.evaluation.diagnosis)

    def __str__(self) -> str:
        extra = f" ({self.unscored} not scored)" if self.unscored else ""
        why = miss_text(self.misses)
        return f"{self.retriever}: {self.right} of {self.scored} right{extra}" + (f"; wrong: {why}" if why else "")


@dataclass(frozen=True)
class Flag:
    version: str
    retriever: str
    question: str
    judge: str  # the judged metric: groundedness or answer_relevance
    score: float
    correctness: float
    reason: str = ""  # correctness_reason of the row

    @property
    def passes_wrong(self) -> bool:
        """The judge passes an answer that is wrong by key facts (else it fails a right one)."""
        return self.score >= JUDGE_PASS

    def __str__(self) -> str:
        what = "on a wrong answer" if self.passes_wrong else "on a right answer"
        why = f": {self.reason}" if self.reason else ""
        return (f"{self.retriever}: {self.judge} {self.score:.2f} {what} (correctness {self.correctness:.2f}{why})"
                f" - {self.question}")


@dataclass
class Agreement:
    tallies: list[Tally] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    right_at: float = RIGHT_AT

    @property
    def checked(self) -> bool:
        """Whether any answer had a correctness value to check against."""
        return any(t.scored for t in self.tallies)

    def as_dict(self) -> dict[str, Any]:
        return {"right_at": self.right_at,
                "versions": [{"version": t.version, "right": t.right, "scored": t.scored, "unscored": t.unscored,
                              "misses": t.misses} for t in self.tallies],
                "flags": [{"version": f.version, "question": f.question, "judge": f.judge, "score": f.score,
                           "correctness": f.correctness, "reason": f.reason} for f in self.flags]}

    def to_string(self, limit: int = 10) -> str:
        if not self.checked:
            return "Right by key facts: no answer has a reference answer or key facts to check."
        lines = [f"Right by key facts (correctness >= {self.right_at:g} counts as right):"]
        lines += [f"  {t}" for t in self.tallies]
        if not self.flags:
            lines.append(f"Judges ({', '.join(JUDGES)}) agree with key-fact correctness on every answer.")
            return "\n".join(lines)
        lines.append(f"Judges that disagree with key-fact correctness ({len(self.flags)}):")
        lines += [f"  {_clip(str(f), 200)}" for f in self.flags[:limit]]
        if len(self.flags) > limit:
            lines.append(f"  ... and {len(self.flags) - limit} more (results.agreement().flags)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


def agreement(rows: pd.DataFrame, right_at: float = RIGHT_AT, judges: Sequence[str] = JUDGES) -> Agreement:
    """Per version, answers right by key facts out of those scored, and rows where a judge disagrees."""
    tallies: list[Tally] = []
    flags: list[Flag] = []
    if rows is None or rows.empty or "version" not in rows:
        return Agreement(tallies, flags, right_at)
    for version, group in rows.groupby("version", sort=False):
        retriever = str(group["retriever"].iloc[0]) if "retriever" in group else str(version)
        right = scored = 0
        causes = []
        for _, row in group.iterrows():
            causes.append(row_diagnosis(row))
            correctness = _number(row.get("correctness"))
            if correctness is None or _failed(row):
                continue
            scored += 1
            is_right = correctness >= right_at
            right += is_right
            for judge in judges:
                score = _number(row.get(judge))
                if score is None or (score >= JUDGE_PASS) == is_right:
                    continue
                if judge in ON_TOPIC_ONLY and not is_right:
                    continue  # a wrong answer can still address the question: relevance passing it is no error
                flags.append(Flag(str(version), retriever, str(row.get("question") or ""), judge, score,
                                  correctness, str(row.get("correctness_reason") or "")))
        tallies.append(Tally(str(version), retriever, right, scored, len(group) - scored, miss_counts(causes)))
    return Agreement(tallies, flags, right_at)


def row_diagnosis(row: Any) -> str | None:
    """The row's ``diagnosis`` column, or one made from its reference answer (rows written before it existed)."""
    stored = row.get("diagnosis")
    if isinstance(stored, str) and stored:
        return stored
    contexts = row.get("contexts")
    return diagnose(str(row.get("answer") or ""), list(contexts) if isinstance(contexts, (list, tuple)) else [],
                    row.get("reference_answer") if isinstance(row.get("reference_answer"), str) else None,
                    _number(row.get("correctness")), question=str(row.get("question") or ""),
                    evidence_hit=_number(row.get("hit_rate")), error=row.get("error"))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _failed(row: Any) -> bool:
    error = row.get("error")
    return error is not None and not (isinstance(error, float) and math.isnan(error))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
