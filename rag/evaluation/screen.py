"""Screen, then answer: a retrieval-only pass that drops versions clearly worse than the best
before any answer is written.

Answers and judges cost tens of seconds a question on a CPU; retrieval costs milliseconds. Every
version retrieves for every question that names its evidence pages, and its final contexts (what
the LLM would read: after merging, rerank and pruning) are scored against them: nDCG (own k),
the screening score, and hit rate beside it. A version is dropped when its paired nDCG difference
to the best version is significantly below 0 (the bootstrap interval of :mod:`rag.evaluation.stats`
lies below 0, over at least ``MIN_PAIRED`` questions); the rest, the best and every version
within noise of it, go on to answers and the triad.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rag.errors import InputError
from rag.evaluation.metrics import retrieval_scores
from rag.evaluation.questions import Question
from rag.evaluation.stats import Difference, Estimate, estimate, paired

SCREEN_METRIC = "ndcg"


@dataclass
class VersionScreen:
    spec: Any
    ndcg: dict[int, float | None]  # question index -> nDCG of the final contexts
    hit_rate: dict[int, float | None]
    seconds: float
    vs_best: Difference | None = None

    @property
    def estimate(self) -> Estimate:
        return estimate(self.ndcg.values())

    @property
    def dropped(self) -> bool:
        return self.vs_best is not None and not self.vs_best.within_noise and self.vs_best.mean < 0


@dataclass
class Screening:
    questions: int
    versions: list[VersionScreen] = field(default_factory=list)

    @property
    def kept(self) -> list[Any]:
        return [v.spec for v in self.versions if not v.dropped]

    @property
    def dropped(self) -> list[Any]:
        return [v.spec for v in self.versions if v.dropped]

    def __str__(self) -> str:
        lines = [f"Screening: retrieval only, {self.questions} questions with evidence pages, "
                 f"scored by nDCG of the contexts the LLM would read (paired against the best):"]
        for v in sorted(self.versions, key=lambda v: -(v.estimate.mean or 0.0)):
            hits = estimate(v.hit_rate.values())
            versus = "the best" if v.vs_best is None else f"vs best {v.vs_best}"
            verdict = "dropped" if v.dropped else "kept"
            per_question = 1000 * v.seconds / max(len(v.ndcg), 1)
            lines.append(f"  {verdict:7} {v.spec.name}: nDCG {v.estimate}, hit rate {hits.mean:.2f}, "
                         f"{versus}, {per_question:.0f} ms a question")
        kept, total = len(self.kept), len(self.versions)
        if kept == total:
            lines.append(f"All {total} versions go on to answers: none is significantly worse than the best.")
        else:
            lines.append(f"{kept} of {total} versions go on to answers; the others retrieve significantly worse.")
        return "\n".join(lines)


def screen(app: Any, specs: Sequence[Any], items: Sequence[Question]) -> Screening:
    """Retrieve for every question with evidence with every version; keep the best and those within noise."""
    with_evidence = [q for q in items if q.evidence]
    if not with_evidence:
        raise InputError("Screening needs questions with evidence pages (JSONL \"evidence\": "
                         "[{\"file\": ..., \"page\": N}]); these questions have none. Run without --screen, "
                         "or write a test set with `rag questions`.")
    result = Screening(questions=len(with_evidence))
    for spec in specs:
        retrieve = app.retriever(spec)
        retrieve(with_evidence[0].question)  # loads the index and models: not part of the time per question
        ndcg, hits = {}, {}
        start = time.perf_counter()
        for i, item in enumerate(with_evidence):
            scores = retrieval_scores(retrieve(item.question), item.evidence)
            ndcg[i], hits[i] = scores.get("ndcg"), scores.get("hit_rate")
        result.versions.append(VersionScreen(spec, ndcg, hits, time.perf_counter() - start))
    best = max(result.versions, key=lambda v: v.estimate.mean if v.estimate.mean is not None else -1.0)
    for version in result.versions:
        if version is not best:
            version.vs_best = paired(version.ndcg, best.ndcg)
    return result
