"""Run a question set through several retriever versions under TruLens and compare them.

    from rag import RAG, Config
    from rag.evaluation import evaluate

    app = RAG(Config(storage_dir="storage"))
    results = evaluate(app, "eval_questions/sample.jsonl",
                       retrievers=["basic", "sentence_window:window_size=1", "auto_merging"])
    print(results.leaderboard)          # one row per version, best first
    results.rows                        # one row per (version, question)
    results.paths                       # CSV, JSON, PNG written for this run
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from rag.errors import ConfigError
from rag.executors import open_executor
from rag.evaluation import TRIAD
from rag.evaluation.cache import EvaluationCache
from rag.evaluation.questions import Question, as_questions
from rag.evaluation.ranking import chart, display, from_rows, shown_columns
# The row's columns and one version's run live with the per-row code that cluster workers share.
from rag.evaluation.version_run import (  # noqa: F401  (ROW_COLUMNS, stored_columns: part of this module's API)
    DEFAULT_AT, ROW_COLUMNS, VersionRun, cutoffs, row_columns, stored_columns)


@dataclass
class EvaluationResults:
    rows: pd.DataFrame  # one row per (version, question)
    leaderboard: pd.DataFrame  # one row per version, best first
    paths: dict[str, Path] = field(default_factory=dict)  # dir, rows_csv, rows_json, leaderboard_csv, chart
    database_url: str = ""  # password hidden
    judge: str = ""
    at: tuple[int, ...] = DEFAULT_AT
    cache: str = ""  # e.g. "answers 12 of 24 from cache; judgements 36 of 72 from cache"
    screening: Any = None  # rag.evaluation.screen.Screening when the run was screened
    verdict: Any = None  # rag.evaluation.gate's verdict when RAG.evaluate was given fail_under minimums
    early_stopping: Any = None  # rag.evaluation.early_stop.EarlyStopping when the run stopped versions early
    executor: str = ""  # with a remote executor: what ran on it, what was resumed, per-worker retries and failures
    labels_url: str = field(default="", repr=False)  # the database's URL with its password: where labels are read

    def to_string(self, columns: Sequence[str] | None = None) -> str:
        """The leaderboard with 95% intervals; hit_rate/mrr without @ are at each version's own k."""
        return display(self.leaderboard, columns or shown_columns(self.leaderboard))

    def __str__(self) -> str:
        return self.to_string()

    def _repr_html_(self) -> str:  # Jupyter
        from rag.evaluation.ranking import display_frame

        return display_frame(self.leaderboard, shown_columns(self.leaderboard)).to_html(index=False)

    @property
    def stats(self) -> pd.DataFrame:
        """One line per (version, metric): n, mean and the 95% bootstrap interval."""
        from rag.evaluation.ranking import metric_columns, with_row_triad
        from rag.evaluation.stats import summarize

        rows = with_row_triad(self.rows)
        return summarize(rows, [m for m in metric_columns(rows) if m in rows])

    def compare(self, a: str, b: str, metric: str = "triad"):
        """Paired difference ``a - b`` (versions or retriever names) on the questions both scored."""
        from rag.evaluation.ranking import with_row_triad
        from rag.evaluation.stats import compare

        return compare(with_row_triad(self.rows), self._version(a), self._version(b), metric)

    def _version(self, name: str) -> str:
        for col in ("version", "retriever"):
            hit = self.leaderboard.loc[self.leaderboard[col] == name, "version"]
            if len(hit):
                return str(hit.iloc[0])
        raise ConfigError(f"No version {name!r} in these results; known: {', '.join(self.leaderboard['retriever'])}.")

    def best(self) -> str | None:
        """One line: the best version and whether it is significantly better than the runner-up."""
        from rag.evaluation.sweep import best_line

        return best_line(self.leaderboard)

    def agreement(self, right_at: float = 0.5):
        """Per version, how many answers were right by key facts, and the rows where a judge
        disagrees with key-fact correctness (see :mod:`rag.evaluation.verdict`)."""
        from rag.evaluation.verdict import agreement

        return agreement(self.rows, right_at=right_at)

    def label_agreement(self):
        """Each judge's agreement with the labels (``rag label``) on these answers, per metric: n,
        balanced accuracy, AUC, Cohen's kappa and its interval; empty when none is labelled. An
        answer labelled in an earlier run counts when the same question got the same answer."""
        from contextlib import closing

        from rag.evaluation.labeling import label_agreement
        from rag.evaluation.labels import LabelStore

        if not self.labels_url:
            return label_agreement(self.rows, [])
        with closing(LabelStore(self.labels_url)) as store:
            return label_agreement(self.rows, store.labels())

    def gate(self, fail_under: dict[str, float] | Sequence[str]):
        """Check every version's mean against minimums, e.g. ``{"groundedness": 0.7, "hit_rate@5": 0.8}``."""
        from rag.evaluation.gate import check

        return check(self.leaderboard, fail_under)

    @property
    def failed(self) -> pd.DataFrame:
        """Rows whose answer failed, or whose triad was not (fully) scored."""
        scores = self.rows[list(TRIAD)]
        return self.rows[self.rows["error"].notna() | scores.isna().any(axis=1)]

    def failure_summary(self) -> str | None:
        """One line saying how many rows failed and the first reason; None when every row is complete."""
        failed = self.failed
        if failed.empty:
            return None
        errors = failed["error"].dropna()
        first = errors.iloc[0] if len(errors) else "feedback not computed (see the *_reason columns)"
        return (f"{len(failed)} of {len(self.rows)} answers failed or were not scored; first: "
                f"{str(first).splitlines()[0][:200]}")


def evaluate(app: Any, questions: Any, retrievers: Iterable[Any] | None = None, judge: str | None = None,
             progress: bool = True, output_dir: str | Path | None = None, app_name: str = "rag",
             feedback_timeout: float = 600.0, limit: int | None = None,
             at: Sequence[int] = DEFAULT_AT, cache: bool = True, workers: int = 1,
             screen: bool | str | Path | Sequence[Any] = False, early_stop: bool = False) -> EvaluationResults:
    """Answer every question with every retriever version, recorded and judged by TruLens.

    Args:
        app: a :class:`rag.RAG` whose storage holds the ingested PDFs.
        questions: a path (.txt / .jsonl), or a list of :class:`Question`, strings or dicts.
        retrievers: retriever specs such as ``"basic"`` or ``"sentence_window:window_size=1"``
            (default: every registered kind with its defaults); ``|`` sweeps a parameter:
            ``"sentence_window:window_size=1|3|5"`` is three versions (see :mod:`rag.evaluation.sweep`).
        judge: ``"local"`` (offline, default from the config) or ``"openai"`` (OpenAI API or an
            OpenAI-compatible server from ``judge_base_url``).
        progress: show a progress bar on stderr.
        output_dir: where the CSV / JSON / PNG go; default ``<storage_dir>/results/<timestamp>/``.
        app_name: TruLens app name; each version is ``"<spec> llm=<model> judge=<judge>"``.
        feedback_timeout: seconds to wait for each version's feedback results.
        limit: only the first ``limit`` questions.
        at: retrieval cut-offs: ``hit_rate@k`` and ``ndcg@k`` for each k, for every version.
        cache: reuse answers and judgements of earlier runs with the same question, contexts,
            model and prompt (``<storage_dir>/cache/evaluation.sqlite``, see :mod:`rag.evaluation.cache`).
        workers: questions answered in parallel; only for a server generator (openai, openai_like).
        screen: first a retrieval-only pass (:mod:`rag.evaluation.screen`) that drops the versions
            whose contexts find the evidence pages significantly worse than the best; ``True``
            screens on all of ``questions`` (before ``limit``), a path or list on those questions.
            The screening is in ``results.screening`` (and printed to stderr with ``progress``).
        early_stop: answer question by question with every version in turn, and stop a version
            once a sign test on key-fact correctness says it is worse than the leader
            (:mod:`rag.evaluation.early_stop`; needs reference answers). What was stopped and why
            is in ``results.early_stopping`` (and printed with ``progress``); stopped versions rank last.

    With ``executor = "ray"`` in the config, every (version, question) pair is first answered and
    judged on the cluster (:mod:`rag.evaluation.cluster`; pairs done by an interrupted run are not
    sent again), and the run below then takes every answer and judgement from the evaluation cache:
    the same rows, records and leaderboard as a local run. ``results.executor`` says what ran where.
    """
    from rag.embedding import judge_embedder
    from rag.evaluation.judges import judge_label, make_judge
    from rag.evaluation.trulens.providers import provider_for
    from rag.evaluation.trulens.recording import triad_metrics
    from rag.evaluation.trulens.session import open_session, redact

    config = app.config
    judge = judge or config.judge
    label = judge_label(config, judge)
    items = as_questions(questions)
    screening_items = items if screen is True else as_questions(screen) if screen else []
    if limit is not None:
        items = items[:limit]
    at = cutoffs(at)
    _check_workers(config, workers)
    specs = _unique_specs(app, retrievers)
    screening = None
    if screen is not False and screen is not None:
        from rag.evaluation.screen import screen as run_screen

        screening = run_screen(app, specs, screening_items)
        specs = screening.kept
        if progress:
            print(screening, file=sys.stderr, flush=True)
    embed = judge_embedder(config)
    store = EvaluationCache.for_config(config) if cache else None
    executor = open_executor(config)
    if executor.remote and store is None:  # the cluster's answers reach this run through a cache all the same
        store = EvaluationCache(":memory:")
    # a missing key fails here
    metrics = triad_metrics(provider_for(make_judge(config, judge, embed)), cache=store, label=label)
    session = open_session(config)

    rows: list[dict[str, Any]] = []
    stopping = None
    if early_stop and not any(q.reference_answer or q.key_facts for q in items):
        warnings.warn("early_stop needs reference answers or key facts to compare versions: every version "
                      "answers every question.", stacklevel=2)
        early_stop = False
    executed = ""
    if executor.remote:
        from rag.evaluation.cluster import answer_on_executor

        with executor:
            executed = answer_on_executor(app, executor, specs, items, judge, at, app_name, store,
                                          feedback_timeout, progress)
    bar = _progress(len(specs) * len(items), progress)
    try:
        interleave = early_stop and len(specs) > 1
        runs = []
        for spec in specs:
            runs.append(VersionRun(app, spec, items, metrics, label, app_name, embed, bar, at, store, workers))
            if not interleave:  # one version after the other: its triad is in before the next starts
                runs[-1].answer_all(items)
                rows.extend(runs[-1].finish(session, feedback_timeout))
        if interleave:
            stopping = _interleaved(runs, items, bar)
            for run in runs:
                rows.extend(run.finish(session, feedback_timeout))
    finally:
        bar.close()
        if store is not None:
            store.close()
    frame = pd.DataFrame(rows, columns=row_columns(at))
    results = EvaluationResults(rows=frame, leaderboard=from_rows(frame),
                                database_url=redact(database_url(config)), labels_url=database_url(config),
                                judge=label, at=at,
                                cache=store.summary() if store is not None and cache else "off", screening=screening,
                                executor=executed)
    if stopping is not None:
        from rag.evaluation.early_stop import rank_stopped_last

        results.early_stopping = stopping
        results.leaderboard = rank_stopped_last(results.leaderboard, stopping.stopped)
        if progress:
            print(stopping.summary(), file=sys.stderr, flush=True)
    results.paths = write_outputs(results, _output_dir(config, output_dir))
    return results


def _interleaved(runs: list[VersionRun], items: list[Question], bar: Any) -> Any:
    """Question by question with every running version; a version clearly worse than the leader stops."""
    from rag.evaluation.early_stop import EarlyStopping

    stopping = EarlyStopping([run.version for run in runs], len(items))
    by_version = {run.version: run for run in runs}
    for item in items:
        for version in stopping.running:
            row = by_version[version].answer(item)
            by_version[version].rows.append(row)
            stopping.add(version, row.get("correctness"))  # a failed question has none: it counts as 0
        for stop in stopping.check():
            bar.total -= len(items) - stop.after  # its remaining questions will not be asked
            bar.refresh()
    return stopping


def database_url(config: Any) -> str:
    from rag.evaluation.trulens.session import database_url as url

    return url(config)


def _check_workers(config: Any, workers: int) -> None:
    from rag.generation import GENERATORS

    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r}: give a whole number of at least 1 (--workers N).")
    if workers > 1 and GENERATORS.get(config.llm_provider).local_weights:
        raise ConfigError(f"--workers {workers} needs a server generator (llm_provider openai or openai_like): "
                          f"the in-process model ({config.llm_provider}) answers one question at a time.")


def _unique_specs(app: Any, retrievers: Iterable[Any] | None) -> list[Any]:
    if retrievers is None:
        from rag.retrieval import RETRIEVER_KINDS

        retrievers = RETRIEVER_KINDS.names()
    if isinstance(retrievers, str):
        retrievers = [retrievers]
    from rag.evaluation.sweep import expand

    specs, seen = [], set()
    for r in expand(retrievers):  # "sentence_window:window_size=1|3" is two versions
        spec = app.spec(r)
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    if not specs:
        raise ConfigError("No retriever to evaluate: give at least one, e.g. retrievers=[\"basic\"].")
    return specs


# ---------------------------------------------------------------- outputs

def _output_dir(config: Any, output_dir: str | Path | None) -> Path:
    if output_dir is not None:
        return Path(output_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(config.storage_dir) / "results" / stamp


def write_outputs(results: EvaluationResults, folder: Path) -> dict[str, Path]:
    """rows.csv, rows.json, leaderboard.csv and chart.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"dir": folder, "rows_csv": folder / "rows.csv", "rows_json": folder / "rows.json",
             "leaderboard_csv": folder / "leaderboard.csv", "chart": folder / "chart.png"}
    flat = results.rows.copy()
    for col in ("contexts", "sources"):
        flat[col] = flat[col].map(lambda v: json.dumps(v, ensure_ascii=False))
    flat.to_csv(paths["rows_csv"], index=False)
    records = json.loads(results.rows.to_json(orient="records", force_ascii=False))
    paths["rows_json"].write_text(json.dumps({
        "created": datetime.now().isoformat(timespec="seconds"), "judge": results.judge,
        "database_url": results.database_url,
        "leaderboard": json.loads(results.leaderboard.to_json(orient="records", force_ascii=False)),
        "rows": records}, indent=2, ensure_ascii=False))
    results.leaderboard.to_csv(paths["leaderboard_csv"], index=False)
    chart(results.leaderboard, paths["chart"])
    return paths


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Evaluating", unit="q", disable=not enabled, file=sys.stderr, leave=True)
