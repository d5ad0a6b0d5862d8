"""Evaluation on a remote executor (``executor = "ray"``): workers answer and judge, this process records.

Each (version, question) pair is one task. A worker runs the same per-row work as a local run,
:class:`rag.evaluation.version_run.VersionRun` (``answer``, then ``finish`` for the triad), under TruLens
in a scratch database of its own, with an evaluation cache that notes every answer and judgement
the row used. Those cache entries come back here and go into this process's evaluation cache.
The local run that follows then finds every answer and judgement in the cache: the rows, the
TruLens records and the leaderboard are made here exactly as a local run makes them, once per
row, however often a task was retried on another worker.

Resume: a pair whose entries arrived is marked done in the evaluation cache (for the index's
files, the version and the question); a run interrupted and started again sends only the pairs
not marked. What the workers need from this machine: the index (a PostgreSQL store, or
``storage_dir`` on one machine) and the generator's and judges' models or servers.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

from rag.errors import ConfigError
from rag.evaluation.cache import EvaluationCache
from rag.evaluation.questions import Question
from rag.generation import generator_label

ROW_DONE = "row"  # evaluation-cache kind: a (version, question) pair whose answer and judgements arrived


class TouchedCache(EvaluationCache):
    """An in-memory evaluation cache that remembers the entries read or written since ``clear``."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.touched: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, key: str) -> Any:
        value = super().get(kind, key)
        if value is not None:
            self.touched[(kind, key)] = value
        return value

    def put(self, kind: str, key: str, value: Any) -> None:
        super().put(kind, key, value)
        self.touched[(kind, key)] = value


@dataclass
class ClusterPlan:
    """What a worker needs for any pair of one evaluation (sent to each worker once)."""

    key: str  # a worker process keeps its app, models and recorders while this stays the same
    make_app: Any  # the driver's app class (rag.RAG): called with the config on the worker
    config: Any
    judge: str
    at: tuple[int, ...]
    app_name: str
    items: list[Question]
    feedback_timeout: float


def answer_on_executor(app: Any, executor: Any, specs: Sequence[Any], items: list[Question], judge: str,
                       at: Sequence[int], app_name: str, cache: EvaluationCache, feedback_timeout: float,
                       progress: bool) -> str:
    """Answer and judge every pair not done before on ``executor``; their cache entries land in
    ``cache``. Returns one line: how many pairs ran, how many were resumed, the executor's report."""
    from tqdm.auto import tqdm

    from rag.evaluation.judges import judge_label
    from rag.executors import TaskFailed
    from rag.stores import store_name

    config = app.config
    if store_name(config.store) == "local" and executor.machines() > 1:
        raise ConfigError(f"executor={config.executor} on {executor.machines()} machines needs the PostgreSQL store "
                          "(store = postgresql://...): workers elsewhere cannot read the index in storage_dir.")
    for spec in specs:
        app.index(spec)  # an index built on demand is built here, by the one writer, before workers load it
    files = sorted((name, f["sha256"]) for name, f in app.store.require_manifest()["files"].items())
    label = judge_label(config, judge)

    def marker(spec: Any, item: Question) -> str:
        return cache.key(files, spec.name, generator_label(config), label, list(at), item.question,
                         item.reference_answer, item.key_facts)

    pairs = [(spec, i) for spec in specs for i in range(len(items))]
    todo = [(spec, i) for spec, i in pairs if not cache.contains(ROW_DONE, marker(spec, items[i]))]
    # The same evaluation again (a resumed run) finds the workers' indexes and models loaded.
    key = cache.key(files, config.as_dict(), judge, list(at), app_name, [q.question for q in items])
    plan = ClusterPlan(key, type(app), config, judge, tuple(at), app_name, items, feedback_timeout)
    failed: list[str] = []
    bar = tqdm(total=len(todo), desc=f"Answering on {executor.name}", unit="q", disable=not progress or not todo)
    try:
        for k, outcome in executor.map(answer_pair, todo, (plan,)):
            spec, i = todo[k]
            if isinstance(outcome, TaskFailed):  # this process answers it in the run that follows
                failed.append(f"{spec.name} / {items[i].question[:40]!r} on {outcome}")
            else:
                for kind, key, value in outcome["entries"]:
                    cache.put(kind, key, value)
                if outcome["error"] is None:
                    cache.put(ROW_DONE, marker(spec, items[i]), True)
            bar.update(1)
    finally:
        bar.close()
    line = (f"{len(todo)} of {len(pairs)} answers and judgements on the {executor.name} executor, "
            f"{len(pairs) - len(todo)} resumed from an earlier run; {executor.summary()}")
    if failed:
        line += f"; done here instead: {'; '.join(failed)}"
    return line


# ---------------------------------------------------------------- on a worker

_WORKER: dict[str, Any] = {}  # this worker process's app, cache, session and version runs, for one plan


def answer_pair(pair: tuple[Any, int], plan: ClusterPlan) -> dict[str, Any]:
    """Runs on a worker: one question through one version, judged; the cache entries it used."""
    spec, index = pair
    state = _worker_state(plan)
    run = state["runs"].get(spec.name)
    if run is None:
        from tqdm.auto import tqdm

        from rag.evaluation.version_run import VersionRun

        run = state["runs"][spec.name] = VersionRun(
            state["app"], spec, plan.items, state["metrics"], state["label"], plan.app_name, state["embed"],
            tqdm(disable=True), plan.at, state["cache"])
    cache: TouchedCache = state["cache"]
    cache.touched.clear()
    try:
        row = run.answer(plan.items[index])
        run.rows = [row]
        run.finish(state["session"], plan.feedback_timeout)
    except BaseException:  # cancelled or failed half-way: the next task starts from a fresh state
        _WORKER.clear()
        raise
    return {"entries": [(kind, key, value) for (kind, key), value in cache.touched.items()], "error": row["error"]}


def _worker_state(plan: ClusterPlan) -> dict[str, Any]:
    if _WORKER.get("key") == plan.key:
        return _WORKER
    from rag.embedding import judge_embedder
    from rag.evaluation.judges import judge_label, make_judge
    from rag.evaluation.trulens.providers import provider_for
    from rag.evaluation.trulens.recording import triad_metrics
    from rag.evaluation.trulens.session import open_session

    # The worker's own TruLens records are scratch: the rows are recorded once, by the driver.
    scratch = os.path.join(tempfile.gettempdir(), f"rag-worker-{os.getpid()}", f"{plan.key[:16]}.sqlite")
    config = plan.config.replace(database_url=f"sqlite:///{scratch}")
    cache = TouchedCache()
    embed = judge_embedder(config)
    label = judge_label(config, plan.judge)
    _WORKER.clear()
    _WORKER.update(key=plan.key, app=plan.make_app(config, progress=False), cache=cache, embed=embed, label=label,
                   metrics=triad_metrics(provider_for(make_judge(config, plan.judge, embed)), cache=cache,
                                         label=label),
                   session=open_session(config), runs={})
    return _WORKER
