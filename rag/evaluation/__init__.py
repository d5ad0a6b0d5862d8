"""Evaluation: question sets, the RAG triad under TruLens, reference metrics, leaderboards.

    from rag.evaluation import evaluate, load_questions, leaderboard
    results = evaluate(app, load_questions("eval_questions/sample.jsonl"), retrievers=["basic", "sentence_window"])
    print(results.leaderboard)
    print(leaderboard(app.config))   # everything recorded so far, read back from the TruLens database

Importing this package is cheap: TruLens (slow to import) loads only when an evaluation runs.
"""

from typing import Any

__all__ = ["evaluate", "load_questions", "leaderboard", "EvaluationResults", "Question", "TRIAD", "make_judge",
           "judge_label", "JUDGES", "start_dashboard", "stop_dashboard"]

TRIAD = ("context_relevance", "groundedness", "answer_relevance")  # the RAG triad's scores: their one definition


def leaderboard(config: Any, app_name: str | None = None) -> Any:
    """Every app version stored in the TruLens database, best first (a pandas DataFrame)."""
    from rag.evaluation.trulens.recording import stored_leaderboard

    return stored_leaderboard(config, app_name)


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "EvaluationResults"):
        from rag.evaluation import run

        return getattr(run, name)
    if name in ("make_judge", "judge_label", "JUDGES"):
        from rag.evaluation import judges

        return getattr(judges, name)
    if name in ("start_dashboard", "stop_dashboard"):
        from rag.evaluation.trulens import dashboard

        return dashboard.start_dashboard if name == "start_dashboard" else dashboard.stop
    if name in ("load_questions", "Question"):
        from rag.evaluation import questions

        return getattr(questions, name)
    raise AttributeError(name)
