"""Recording under TruLens: the RAG-triad metrics, quiet recorders, and reading scores back.

- :func:`triad_metrics` defines the course's triad with the course's selectors.
- :func:`make_recorder` wraps a query engine in a ``TruLlama`` recorder without printing
  TruLlama's hundreds of "instrumenting ..." lines.
- :func:`record_scores` reads each record's scores and the judge's reasons.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from typing import Any, Sequence

import numpy as np

CONTEXT_RELEVANCE = "Context Relevance"
GROUNDEDNESS = "Groundedness"
ANSWER_RELEVANCE = "Answer Relevance"
FEEDBACK_NAMES = (CONTEXT_RELEVANCE, GROUNDEDNESS, ANSWER_RELEVANCE)
# Column names used in our result tables.
SCORE_COLUMNS = {CONTEXT_RELEVANCE: "context_relevance", GROUNDEDNESS: "groundedness",
                 ANSWER_RELEVANCE: "answer_relevance"}


# ---------------------------------------------------------------- metrics

def triad_metrics(provider: Any, cache: Any = None, label: str = "") -> list[Any]:
    """The RAG triad as TruLens ``Metric``s, with the course's selectors.

    - Context Relevance: question (and answer, for judges that take it) vs. each retrieved chunk
      (``collect_list=False``), aggregated by ``np.max``: does the context hold what is needed.
      The course averages (``np.mean``), which ranks a retriever higher for passing fewer chunks.
    - Groundedness: all retrieved chunks together (``collect_list=True``) vs. the answer.
    - Answer Relevance: question vs. answer.

    The retrieved chunks are those of the outermost retrieval span, i.e. the query engine's
    final nodes after sentence-window replacement, merging and rerank: what the LLM saw.
    With a ``cache`` (:class:`rag.evaluation.cache.EvaluationCache`), judgements seen before under
    the judge ``label`` are not computed again.
    """
    from trulens.core import Metric

    from rag.evaluation.cache import cached_feedback
    from rag.evaluation.judges import accepts_answer, accepts_question
    from rag.evaluation.trulens.providers import no_download_groundedness

    def judged(method: Any) -> Any:
        return cached_feedback(method, cache, label)

    groundedness_kwargs: dict[str, Any] = {}
    if getattr(provider, "endpoint", None) is not None:  # an LLM provider: TruLens splits the answer
        groundedness_kwargs["groundedness_configs"] = no_download_groundedness()

    context_relevance = Metric(judged(provider.context_relevance_with_cot_reasons), name=CONTEXT_RELEVANCE) \
        .on_input("question").on_context("context", collect_list=False)
    if accepts_answer(getattr(provider, "judge", None)):  # our judges that can see the answer are shown it
        context_relevance = context_relevance.on_output("answer")
    # The best context, not the mean: a mean over contexts rewards passing fewer of them, whether
    # or not what the answer needs is among them.
    context_relevance = context_relevance.aggregate(np.max)
    groundedness = (
        Metric(judged(provider.groundedness_measure_with_cot_reasons), name=GROUNDEDNESS, **groundedness_kwargs)
        .on_context("source", collect_list=True)
        .on_output("statement")
    )
    if accepts_question(getattr(provider, "judge", None)):  # a claim like "The answer is 25 days" needs it
        groundedness = groundedness.on_input("question")
    answer_relevance = (
        Metric(judged(provider.relevance_with_cot_reasons), name=ANSWER_RELEVANCE)
        .on_input("prompt")
        .on_output("response")
    )
    return [context_relevance, groundedness, answer_relevance]


NOT_APPLICABLE = "no reference value for this record"  # session.py filters this log line


def reference_metrics(names: Sequence[str], computed: dict[str, dict[str, Any]]) -> list[Any]:
    """TruLens ``Metric``s that store values our code computed (hit rate, MRR, nDCG, correctness,
    the number of contexts) as feedback results of the same records as the triad.

    ``computed`` maps a question to its values; it is filled while the version answers and read
    when TruLens computes feedback, after the last answer. A question without a value (its answer
    failed, or it has no reference) gets no result rather than a made-up one.
    """
    from trulens.core import Metric

    def lookup(name: str):
        def reference_value(question: str) -> float:
            value = (computed.get(question) or {}).get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                raise LookupError(NOT_APPLICABLE)
            return float(value)

        return reference_value

    return [Metric(lookup(name), name=name).on_input("question") for name in names]


# ---------------------------------------------------------------- recorder

def make_recorder(engine: Any, app_name: str, app_version: str, metrics: list[Any],
                  metadata: dict[str, Any] | None = None):
    """A ``TruLlama`` recorder for one app version; instrumentation output is swallowed.

    Feedback is computed when :meth:`retrieve_feedback_results` is called (synchronously),
    so the background evaluator thread is not started.
    """
    from trulens.apps.llamaindex import TruLlama

    with contextlib.redirect_stdout(io.StringIO()):
        recorder = TruLlama(engine, app_name=app_name, app_version=app_version, feedbacks=metrics,
                            metadata=dict(metadata or {}), start_evaluator=False)
    return recorder


# ---------------------------------------------------------------- reading back

def wait_for_feedback(recorder: Any, record_ids: list[str], timeout: float) -> None:
    try:
        recorder.retrieve_feedback_results(record_ids=record_ids, timeout=timeout)
    except RuntimeError as exc:  # TruLens' timeout: keep what was computed, say what is missing
        _warn(f"Not all feedback results arrived within {timeout:.0f} s for {recorder.app_version}: {exc}")


def attach_scores(session: Any, rows: list[dict[str, Any]], names: Sequence[str] = FEEDBACK_NAMES) -> None:
    """Set each row's score columns and ``<column>_reason`` from its TruLens record."""
    ids = [r["record_id"] for r in rows if r["record_id"]]
    records, _ = session.get_records_and_feedback(record_ids=ids)
    by_id = {rid: rec for rid, rec in records.set_index("record_id").iterrows()} if not records.empty else {}
    for row in rows:
        record = by_id.get(row["record_id"])
        for name in names:
            column = SCORE_COLUMNS[name]
            score = None if record is None else _number(record.get(name))
            row[column] = score
            calls = None if record is None else record.get(f"{name}_calls")
            row[f"{column}_reason"] = reason_text(calls) if score is not None else "not computed"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or number < 0 else number  # TruLens uses -1 for "unparsable"


def reason_text(calls: Any) -> str:
    """The judge's explanations from a TruLens ``<metric>_calls`` list, one per evaluated item."""
    if not isinstance(calls, list):
        return ""
    evals = [c for c in calls if isinstance(c, dict) and c.get("span_type") == "eval"]
    parts = []
    for i, call in enumerate(evals, start=1):
        meta = call.get("meta") or {}
        text = _explain(meta.get("explanation")) or _explain((meta.get("metadata") or {}).get("reason")) \
            or _explain((meta.get("metadata") or {}).get("reasons"))
        score = call.get("ret")
        prefix = f"[{i}] {float(score):.2f}: " if len(evals) > 1 and isinstance(score, (int, float)) else ""
        if text or prefix:
            parts.append(prefix + (text or ""))
    return "\n".join(parts)


def _explain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith(("[", "{")):
            try:
                return _explain(json.loads(stripped))
            except json.JSONDecodeError:
                return stripped
        return stripped
    if isinstance(value, dict):
        if "supporting_evidence" in value:  # TruLens groundedness: one dict per statement
            score = value.get("score")
            shown = f" ({float(score):.2f})" if isinstance(score, (int, float)) else ""
            return f"{value.get('criteria', '')}{shown}: {value.get('supporting_evidence', '')}".strip()
        return "; ".join(f"{k}: {_explain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "\n".join(filter(None, (_explain(v) for v in value)))
    return str(value)


def stored_rows(config: Any, app_name: str | None = None) -> Any:
    """One row per stored record, with the columns of :attr:`EvaluationResults.rows` that TruLens holds:
    version, retriever, kind, judge, question, the triad, the stored reference metrics, latency,
    tokens, and ``error`` ("not scored") where a triad score is missing."""
    import pandas as pd

    from rag.evaluation.ranking import parse_version
    from rag.evaluation.trulens.label_feedback import is_label_feedback
    from rag.evaluation.trulens.session import open_session

    session = open_session(config)
    records, feedback = session.get_records_and_feedback()
    if records is None or records.empty:
        return pd.DataFrame()
    if app_name is not None:
        records = records[records["app_name"] == app_name]
    rows = pd.DataFrame({"app_name": records["app_name"], "version": records["app_version"],
                         "question": records["input"].map(_plain_text), "record_id": records["record_id"],
                         "latency_s": pd.to_numeric(records["latency"], errors="coerce"),
                         "tokens": pd.to_numeric(records.get("total_tokens"), errors="coerce")})
    parsed = rows["version"].map(parse_version)
    rows["retriever"] = parsed.map(lambda p: p["retriever"])
    rows["llm"] = parsed.map(lambda p: p["llm"])
    rows["judge"] = parsed.map(lambda p: p["judge"])
    rows["kind"] = rows["retriever"].map(lambda r: str(r).split("[")[0])
    for name in (n for n in feedback if not is_label_feedback(n)):  # labels are read from their own table
        rows[SCORE_COLUMNS.get(name, name)] = pd.to_numeric(records[name], errors="coerce").map(
            lambda v: None if pd.isna(v) or v < 0 else v)
    for column in SCORE_COLUMNS.values():
        if column not in rows:
            rows[column] = None
    unscored = rows[list(SCORE_COLUMNS.values())].isna().any(axis=1)
    rows["error"] = unscored.map(lambda bad: "not scored" if bad else None)
    rows["ts"] = records["ts"].values if "ts" in records else range(len(rows))
    return rows.reset_index(drop=True)


def stored_leaderboard(config: Any, app_name: str | None = None) -> Any:
    """The leaderboard of every app version in the TruLens database: the same table as ``evaluate``
    builds (means, intervals, reference metrics, vs_best), from the stored records.

    Each question counts once per version, by its latest record (a re-run adds records, not
    evidence); ``records`` counts all of them. ``errors``: questions whose latest record lacks a
    triad score, left out of every mean.
    """
    import pandas as pd

    from rag.evaluation.ranking import from_rows

    rows = stored_rows(config, app_name)
    if rows.empty:
        return pd.DataFrame(columns=["rank", "app_name", "version", "retriever", "llm", "judge",
                                     *SCORE_COLUMNS.values(), "triad", "latency_s", "records"])
    counts = rows.groupby("version").size()
    # A question evaluated twice (a re-run) counts once, by its latest record: repeats are not new evidence.
    latest = rows.sort_values("ts", kind="mergesort").drop_duplicates(["app_name", "version", "question"], keep="last")
    board = from_rows(latest.drop(columns=["app_name", "llm", "ts"]))
    first = rows.drop_duplicates("version").set_index("version")
    board.insert(1, "app_name", board["version"].map(first["app_name"]))
    board.insert(4, "llm", board["version"].map(first["llm"]))
    board["records"] = board["version"].map(counts).astype(int)
    return board


def _plain_text(value: Any) -> str:
    """A record's input as stored: plain text, or JSON of a string."""
    if isinstance(value, str) and value.startswith('"'):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return loaded if isinstance(loaded, str) else value
    return str(value)


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)
