"""``local``: the offline default judge, per metric the best offline judge by measurement (README, Judges).

- groundedness: ``probability`` (the local model checks every claim). The lexical judge passes
  swapped numbers, swapped entities and flipped negations (AUC 0.46 on our adversarial set, worse
  than chance); the probability judge catches most of them (AUC 0.75), at some cost on BEGIN's
  chit-chat (AUC 0.95 against 0.98) and a few seconds per claim.
- context and answer relevance: ``lexical`` (MiniLM cosine + key words). The model's P(yes) said
  "yes" to nearly every passage and ranked MS MARCO passages worse than the cosine.
"""

from typing import Any

from rag.evaluation.judges import JUDGES, Judge, accepts_answer, accepts_question

GROUNDEDNESS_JUDGE, RELEVANCE_JUDGE = "probability", "lexical"


class PerMetricJudge:
    """Groundedness from one judge, context and answer relevance from another."""

    threshold = 0.5

    def __init__(self, groundedness: Any, relevance: Any):
        self._groundedness, self._relevance = groundedness, relevance

    def groundedness(self, contexts: list[str] | str, answer: str, question: str | None = None) -> tuple[float, str]:
        if question is not None and accepts_question(self._groundedness):
            return self._groundedness.groundedness(contexts, answer, question=question)
        return self._groundedness.groundedness(contexts, answer)

    def context_relevance(self, question: str, context: str, answer: str | None = None) -> tuple[float, str]:
        if answer is not None and accepts_answer(self._relevance):
            return self._relevance.context_relevance(question, context, answer=answer)
        return self._relevance.context_relevance(question, context)

    def answer_relevance(self, question: str, answer: str) -> tuple[float, str]:
        return self._relevance.answer_relevance(question, answer)


def _make(config: Any, embed: Any) -> Any:
    return PerMetricJudge(JUDGES.get(GROUNDEDNESS_JUDGE).make(config, embed),
                          JUDGES.get(RELEVANCE_JUDGE).make(config, embed))


def _label(config: Any) -> str:
    return f"local:{JUDGES.get(GROUNDEDNESS_JUDGE).label_for(config)}+{RELEVANCE_JUDGE}"


PLUGIN = Judge(name="local", help="offline default: groundedness by probability, relevance by lexical",
               make=_make, label=_label, order=0)
