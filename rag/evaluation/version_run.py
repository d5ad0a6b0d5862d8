"""One retriever version under TruLens: each question answered, its reference metrics, then the triad.

Shared by the local run (:mod:`rag.evaluation.run`) and the workers of a cluster run
(:mod:`rag.evaluation.cluster`), so both produce the same rows from the same code.
"""

from __future__ import annotations

import queue
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from rag.errors import ConfigError, RagError
from rag.evaluation.cache import CachedChat, EvaluationCache
from rag.evaluation.citations import citation_faithfulness
from rag.evaluation.diagnosis import diagnose
from rag.evaluation.judges.lexical import LocalJudge
from rag.evaluation.metrics import answer_correctness, cutoff_scores, retrieval_scores
from rag.evaluation.questions import Question
from rag.evaluation.ranking import version_name
from rag.generation import generator_label
from rag.threads import model_threads

DEFAULT_AT = (1, 3, 5)  # retrieval cut-offs reported for every version, whatever its own k


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
            "max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "seed": config.seed,
            "llm_threads": model_threads(config.llm_threads)}  # a local model's answers depend on it
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
            row = run_one(self.engine, mine, item, self.spec, self.version, self.label, self.embed, self.at)
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


def run_one(engine: Any, recorder: Any, item: Question, spec: Any, version: str, label: str,
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
