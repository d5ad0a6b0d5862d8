"""Evaluation: question sets, the RAG triad under TruLens, reference metrics, leaderboards.

    from rag.evaluation import evaluate, load_questions, leaderboard
    results = evaluate(app, load_questions("eval_questions/sample.jsonl"), retrievers=["basic", "sentence_window"])
    print(results.leaderboard)
    print(leaderboard(app.config))   # everything recorded so far, read back from the TruLens database

Importing this package is cheap: TruLens (slow to import) loads only when an evaluation runs.
"""

from typing import Any

# Bound eagerly: a lazy name would be shadowed by the submodule ``rag.evaluation.leaderboard``
# as soon as anything imports it. The module itself imports only the standard library.
from rag.evaluation.leaderboard import leaderboard

__all__ = ["evaluate", "load_questions", "leaderboard", "EvaluationResults", "Question"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "EvaluationResults"):
        from rag.evaluation import run

        return getattr(run, name)
    if name in ("load_questions", "Question"):
        from rag.evaluation import questions

        return getattr(questions, name)
    raise AttributeError(name)
