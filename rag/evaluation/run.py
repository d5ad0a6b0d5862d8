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
import queue
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from rag.errors import ConfigError, RagError
from rag.executors import open_executor
from rag.evaluation import TRIAD
from rag.evaluation.cache import CachedChat, EvaluationCache
from rag.evaluation.citations import citation_faithfulness
from rag.evaluation.diagnosis import diagnose
from rag.evaluation.judges.lexical import LocalJudge
from rag.evaluation.ranking import chart, display, from_rows, shown_columns, version_name
from rag.evaluation.metrics import answer_correctness, cutoff_scores, retrieval_scores
from rag.evaluation.questions import Question, as_questions
from rag.generation import generator_label

DEFAULT_AT = (1, 3, 5)  # retrieval cut-offs reported for every version, whatever its own k


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


class VersionRun:
    """One retriever version under TruLens recorders: answer questions (any order, any time), then collect the triad.

    The reference metrics computed here are stored in TruLens too, as feedback results of the
    same records (see :func:`reference_metrics`), so the database holds the whole leaderboard.
    """

    def __init__(self, app: Any, spec: Any, items: list[Question], metrics: list[Any], label: str, app_name: str,
                 embed: Any, bar: Any, at: Sequence[int], cache: EvaluationCache | None = None, workers: int = 1):
        from rag.evaluation.trulens.recording import make_recorder, reference_metrics

        config = app.config
        settings = {"provider": config.llm_provider, "base_url": config.llm_base_url,
                    "temperature": config.temperature, "seed": config.seed,
                    "max_new_tokens": config.max_new_tokens, "context_window": config.context_window}
        # With a cache, the engine answers through it (its own engine: the app's stays uncached).
        llm = None if cache is None else CachedChat(app.llm, cache, generator_label(config), settings)
        self.engine = app.query_engine(spec, llm=llm)
        self.spec, self.label, self.embed, self.bar, self.at, self.workers = spec, label, embed, bar, at, workers
        self.version = version_name(spec.name, generator_label(config), label)
        self.rows: list[dict[str, Any]] = []
        computed: dict[str, dict[str, Any]] = {}  # question -> reference metrics, filled as answers come
        self.computed, self.stored = computed, stored_columns(items, at)
        metadata = {
            "retriever": spec.name, "kind": spec.kind, "judge": label, "llm_provider": config.llm_provider,
            "llm_model": generator_label(config), "embed_model": config.embed_model, "reranker": config.reranker,
            "max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "seed": config.seed}
        # A TruLens recorder records one question at a time: one recorder per worker, same app version.
        self.free: queue.Queue = queue.Queue()
        for _ in range(workers):
            self.free.put(make_recorder(self.engine, app_name, self.version,
                                        [*metrics, *reference_metrics(self.stored, computed)], metadata=metadata))
        self.recorder = self.free.queue[0]

    def answer(self, item: Question) -> dict[str, Any]:
        self.bar.set_postfix_str(f"{self.spec.kind}: {item.question[:40]}")
        mine = self.free.get()
        try:
            row = _run_one(self.engine, mine, item, self.spec, self.version, self.label, self.embed, self.at)
        finally:
            self.free.put(mine)
        if row["error"] is None:
            self.computed[item.question] = {name: row.get(name) for name in self.stored}
        self.bar.update(1)
        return row

    def answer_all(self, items: list[Question]) -> None:
        if self.workers > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                self.rows.extend(pool.map(self.answer, items))  # in question order
        else:
            self.rows.extend(self.answer(item) for item in items)

    def finish(self, session: Any, feedback_timeout: float) -> list[dict[str, Any]]:
        """Wait for the triad of every answered question and put it in the rows."""
        from rag.evaluation.trulens.recording import attach_scores, wait_for_feedback

        record_ids = [r["record_id"] for r in self.rows if r["record_id"]]
        if record_ids:
            self.bar.set_postfix_str(f"{self.spec.kind}: judging ({self.label})")
            wait_for_feedback(self.recorder, record_ids, feedback_timeout)
            attach_scores(session, self.rows)
        return self.rows


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


ROW_COLUMNS = ["version", "retriever", "kind", "judge", "question", "reference_answer", "answer", "contexts",
               "n_contexts", "sources", "context_relevance", "context_relevance_reason", "groundedness",
               "groundedness_reason", "answer_relevance", "answer_relevance_reason", "citation_faithfulness",
               "citation_faithfulness_reason", "correctness",
               "correctness_reason", "token_recall", "token_f1", "answer_cosine", "hit_rate", "mrr", "ndcg",
               "latency_s", "retrieve_s", "rerank_s", "generate_s", "prompt_tokens", "completion_tokens", "tokens",
               "record_id", "error", "diagnosis"]


def row_columns(at: Sequence[int] = DEFAULT_AT) -> list[str]:
    """ROW_COLUMNS with ``hit_rate@k`` and ``ndcg@k`` for each cut-off after ``ndcg``."""
    cut = ROW_COLUMNS.index("ndcg") + 1
    extra = [f"{m}@{k}" for m in ("hit_rate", "ndcg") for k in at]
    return [*ROW_COLUMNS[:cut], *extra, *ROW_COLUMNS[cut:]]


def cutoffs(at: Any) -> tuple[int, ...]:
    """``"1,3,5"`` or ``[1, 3, 5]`` -> ``(1, 3, 5)``; anything but positive integers is a ConfigError."""
    items = at.split(",") if isinstance(at, str) else list(at or ())
    try:
        values = sorted({int(str(k).strip()) for k in items if str(k).strip()})
    except ValueError:
        raise ConfigError(f"Retrieval cut-offs {at!r}: give positive integers, e.g. --at 1,3,5.") from None
    if any(k < 1 for k in values):
        raise ConfigError(f"Retrieval cut-offs {at!r}: give positive integers, e.g. --at 1,3,5.")
    return tuple(values)


def stored_columns(items: Sequence[Question], at: Sequence[int]) -> list[str]:
    """The row columns recorded in TruLens beside the triad: what the question set can score."""
    names = ["n_contexts", "citation_faithfulness"]
    if any(q.reference_answer or q.key_facts for q in items):
        names.append("correctness")
    if any(q.reference_answer for q in items):
        names.append("token_recall")
    if any(q.evidence for q in items):
        names += ["hit_rate", "mrr", "ndcg", *(f"{m}@{k}" for m in ("hit_rate", "ndcg") for k in at)]
    return names


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


def _run_one(engine: Any, recorder: Any, item: Question, spec: Any, version: str, label: str,
             embed: Any, at: Sequence[int] = DEFAULT_AT) -> dict[str, Any]:
    """One question through one version: the answer, its sources, timings and reference metrics."""
    from rag.retrieval.engine import sources_of

    row: dict[str, Any] = {"version": version, "retriever": spec.name, "kind": spec.kind, "judge": label,
                           "question": item.question, "reference_answer": item.reference_answer, "record_id": None,
                           "error": None, "answer": "", "contexts": [], "sources": []}
    start = time.perf_counter()
    try:
        with recorder as recording:
            response = engine.query(item.question)
    except RagError:
        raise
    except Exception as exc:  # keep the run going; the failure is in the row and the record
        warnings.warn(f"{spec.name}: question {item.question[:60]!r} failed: {exc}", stacklevel=3)
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["diagnosis"] = "failed"
        row["latency_s"] = time.perf_counter() - start
        return row
    wall = time.perf_counter() - start
    if recording.records:
        row["record_id"] = recording.records[-1].record_id
    sources = sources_of(response.source_nodes)
    meta = response.metadata or {}
    timings, usage = meta.get("timings", {}), meta.get("usage", {})
    row.update({
        "answer": str(response.response or "").strip(),
        "contexts": [s.text for s in sources],
        "n_contexts": len(sources),
        "sources": [s.citation for s in sources],
        "latency_s": float(timings.get("total", wall)),
        "retrieve_s": timings.get("retrieve"),
        "rerank_s": timings.get("rerank"),
        "generate_s": timings.get("generate"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "tokens": usage.get("total_tokens"),
    })
    if item.evidence:
        row.update(retrieval_scores(sources, item.evidence))
        row.update(cutoff_scores(sources, item.evidence, at))
    row.update(answer_correctness(row["answer"], item.reference_answer, embed=embed, key_facts=item.key_facts,
                                  question=item.question))
    row["citation_faithfulness"], row["citation_faithfulness_reason"] = citation_faithfulness(
        row["answer"], row["contexts"], LocalJudge(embed), item.question)
    row["diagnosis"] = diagnose(row["answer"], row["contexts"], item.reference_answer, row.get("correctness"),
                                item.key_facts, item.question, row.get("hit_rate"))
    return row


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
