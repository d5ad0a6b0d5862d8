"""The library API: ``RAG(config).ingest(path)``, ``.query(question, retriever=...)``, ``.evaluate(...)``."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from rag.config import Config
from rag.errors import IndexMissingError, InputError
from rag.ingest.sync import copy_index, ensure_index, sync
from rag.progress import progress_bar
from rag.retrieval import RETRIEVER_KINDS
from rag.retrieval.spec import RetrieverSpec
from rag.stores import open_store, store_name
from rag.types import IngestReport, QueryResult, Source

__all__ = ["RAG", "QueryResult", "QueryStream", "Source"]


class RAG:
    """Question answering over a folder of PDFs, with switchable retrievers."""

    def __init__(self, config: Config | None = None, progress: bool = True, **overrides: Any):
        self.progress = progress  # progress bars when an index is built on first use
        self.config = config.replace(**overrides) if config and overrides else config or Config.load(**overrides)
        self.store = open_store(self.config)
        self._indexes: dict[str, Any] = {}  # parser spec key -> IndexParts
        self._engines: dict[str, Any] = {}
        self._llm = None

    # ------------------------------------------------------------ ingestion
    def ingest(self, path: str | Path, progress: bool = True) -> IngestReport:
        """Index the PDFs under ``path`` for every retriever kind (incrementally)."""
        specs = [RetrieverSpec.parse(kind, self.config).parser_spec for kind in RETRIEVER_KINDS.names()]
        report = sync(self.store, path, specs, progress=progress)
        self._indexes.clear()
        self._engines.clear()
        return report

    def sources(self) -> dict[str, Any]:
        """The store's manifest (``rag.stores.base``): the indexed PDFs and the indexes built from them."""
        manifest = self.store.manifest()
        if not manifest:
            raise IndexMissingError(f"No index in {self.store.where()}: run `rag ingest PATH` first (or check "
                                    "--storage-dir / RAG_STORAGE_DIR).")
        return manifest

    def reset(self, everything: bool = False, confirm: Callable[[str], bool] | None = None) -> str:
        """Delete the index (``everything``: also the evaluation runs) once ``confirm(what)`` says yes;
        returns what was done, in one line."""
        done = self.store.reset(everything, confirm)
        self._indexes.clear()
        self._engines.clear()
        return done

    def migrate(self, target: str) -> dict[str, Any]:
        """Copy the local index (of ``storage_dir``) into the empty PostgreSQL store ``target``
        without embedding anything again; returns what was copied."""
        if store_name(target) != "postgresql":
            raise InputError(f"--to {target!r}: give a postgresql:// URL.")
        started = time.perf_counter()
        local = open_store(self.config.replace(store="local"))
        manifest = local.manifest()
        if manifest is None:
            raise IndexMissingError(f"No local index in {local.where()} to migrate: run `rag ingest PATH` first.")
        model = manifest["embed_model"]  # the index's own model, whatever is configured now
        source = open_store(local.config.replace(embed_model=model))
        dest = open_store(self.config.replace(store=target, embed_model=model))
        done = copy_index(source, dest)
        return {"from": source.where(), "to": dest.where(), **done, "seconds": round(time.perf_counter() - started, 2)}

    # ------------------------------------------------------------ querying
    def spec(self, retriever: str | RetrieverSpec = "basic", **params: Any) -> RetrieverSpec:
        return RetrieverSpec.parse(retriever, self.config, **params)

    @property
    def llm(self):
        if self._llm is None:
            from rag.generation import make_llm

            self._llm = make_llm(self.config)
        return self._llm

    def index(self, spec: RetrieverSpec):
        """(VectorStoreIndex, StorageContext) for the spec's node parameters; built on first use."""
        parts = self._parts(spec)
        return parts.index, parts.storage

    def _parts(self, spec: RetrieverSpec):
        from rag.retrieval.mode import IndexParts

        key = spec.parser_spec.key
        if key not in self._indexes:
            ensure_index(self.store, spec.parser_spec, progress=self.progress)
            index, storage = self.store.load(spec.parser_spec, progress=self.progress)
            self._indexes[key] = IndexParts(index, storage, lexical=self.store.lexical(spec.parser_spec),
                                            vectors=self.store.node_vectors(spec.parser_spec))
        return self._indexes[key]

    def query_engine(self, retriever: str | RetrieverSpec = "basic", streaming: bool = False, llm: Any = None,
                     **params: Any):
        """The LlamaIndex query engine of a retriever (what evaluation instruments); ``streaming=True``
        gives one whose responses are LlamaIndex ``StreamingResponse``s. ``llm`` answers with that LLM
        (e.g. one wrapped in the evaluation's answer cache) in place of the app's; that engine is not kept."""
        from rag.retrieval.engine import build_query_engine

        spec = self.spec(retriever, **params)
        if llm is not None:
            return build_query_engine(spec, self._parts(spec), llm, self.config, streaming=streaming)
        key = (spec.name, streaming)
        if key not in self._engines:
            self._engines[key] = build_query_engine(spec, self._parts(spec), self.llm, self.config,
                                                    streaming=streaming)
        return self._engines[key]

    def retrieve(self, question: str, retriever: str | RetrieverSpec = "basic", **params: Any) -> list[Source]:
        """The final context nodes (after window replacement / merging / rerank), no LLM call."""
        _check_question(question)
        return self.retriever(retriever, **params)(question)

    def retriever(self, retriever: str | RetrieverSpec = "basic", **params: Any) -> Callable[[str], list[Source]]:
        """``question -> final sources`` of one retriever version, built once for many questions."""
        from rag.retrieval.engine import build_retrieval, retrieve_nodes, sources_of

        spec = self.spec(retriever, **params)
        first_stage, postprocessors = build_retrieval(spec, self._parts(spec), self.config)
        return lambda question: sources_of(retrieve_nodes(first_stage, postprocessors, question))

    def query(self, question: str, retriever: str | RetrieverSpec = "basic", stream: bool = False,
              **params: Any) -> "QueryResult | QueryStream":
        """Answer ``question`` from the indexed PDFs with the named retriever.

        ``stream=True`` returns a :class:`QueryStream`: iterate it for the answer's text as the model
        writes it; its ``result`` is the :class:`QueryResult` once the answer is complete.
        """
        _check_question(question)
        engine = self.query_engine(retriever, streaming=stream, **params)
        response = engine.query(question)
        if stream:
            return QueryStream(response, lambda text: _result(question, engine, response, text))
        return _result(question, engine, response, str(response.response or ""))

    # ------------------------------------------------------------ evaluation
    def leaderboard(self, app_name: str | None = None, rank_by: str | None = None):
        """Every evaluated version stored in the evaluation database, best first (a pandas DataFrame).
        With labels (``rag label``), ``labelled_correct`` is the share of each version's labelled
        answers marked correct (over ``labelled_correct_n``); ``rank_by="labels"`` ranks by it."""
        from rag.evaluation import leaderboard
        from rag.evaluation.labeling import rank_by_labels, with_labelled_correctness

        self._check_storage()
        board = leaderboard(self.config, app_name)
        labels = self.stored_labels() if not board.empty else []
        if labels:
            from rag.evaluation.trulens.recording import stored_rows

            board = with_labelled_correctness(board, stored_rows(self.config, app_name), labels)
        if rank_by not in (None, "default", "labels"):
            raise InputError(f"rank_by={rank_by!r}: use \"labels\" (your labelled correctness) or leave it out.")
        return rank_by_labels(board) if rank_by == "labels" else board

    def _check_storage(self) -> None:
        storage = Path(self.config.storage_dir)
        # A read never creates a folder (SQLite would make its file).
        if self.config.resolved_database_url.startswith("sqlite") and not storage.is_dir():
            raise InputError(f"No storage folder {storage.resolve()}: check --storage-dir / RAG_STORAGE_DIR, "
                             "or run `rag eval` first.")

    # ------------------------------------------------------------ labels (rag label)
    def labels(self):
        """The label store (:class:`rag.evaluation.labels.LabelStore`) in the evaluation database."""
        from rag.evaluation.labels import LabelStore

        return LabelStore(self.config.resolved_database_url)

    def stored_labels(self) -> list[Any]:
        """Every stored label, oldest first (the connection is closed after the read)."""
        with closing(self.labels()) as store:
            return store.labels()

    def label_session(self, run: str | Path | None = None, version: str | None = None, disagree: bool = False,
                      sample: int | None = None, seed: int = 0, who: str | None = None):
        """A :class:`rag.evaluation.labeling.LabelingSession` over a stored run's rows (the newest
        by default), filtered; rows labelled before are passed over. ``.run`` is the rows file."""
        from rag.evaluation.labeling import LabelingSession, run_rows, select_rows

        self._check_storage()
        path, rows = run_rows(self.config.storage_dir, run)
        session = LabelingSession(select_rows(rows, version, disagree, sample, seed), self.labels(), who)
        session.run = path
        return session

    def export_labels(self, path: str | Path) -> int:
        """Write every stored label to ``path`` as JSONL in the `rag judge` format; returns how many."""
        from rag.evaluation.labeling import export_labels

        self._check_storage()
        with closing(self.labels()) as store:
            return export_labels(store, path)

    def import_labels(self, path: str | Path, who: str | None = None) -> tuple[int, int]:
        """Store the labels of a JSONL file, and show them in the dashboard; returns (added, already stored)."""
        from rag.evaluation.labeling import import_labels

        with closing(self.labels()) as store:
            moved = import_labels(store, path, who)
        self.sync_label_feedback()
        return moved

    def sync_label_feedback(self):
        """Show the stored labels in the TruLens dashboard beside the judges' scores (feedback named
        ``label: <metric>`` on the records they label), replacing what the last sync wrote; returns a
        :class:`rag.evaluation.trulens.label_feedback.LabelSync`."""
        from rag.evaluation.labeling import sync_label_feedback

        with closing(self.labels()) as store:
            return sync_label_feedback(store, self.config.resolved_database_url)

    def label_agreement(self, app_name: str | None = None):
        """Each judge's agreement with the labels on the stored runs, per metric (a DataFrame: n,
        balanced accuracy, AUC, Cohen's kappa and its interval); empty without labels."""
        from rag.evaluation.labeling import label_agreement
        from rag.evaluation.trulens.recording import stored_rows

        self._check_storage()
        labels = self.stored_labels()
        return label_agreement(stored_rows(self.config, app_name) if labels else None, labels)

    def judge_file(self, metric: str, path: str | Path, judge: str | None = None, output: str | Path | None = None,
                   progress: bool = True) -> dict[str, Any]:
        """Score one triad ``metric`` on the rows of a JSONL file with a judge (default: the configured
        one); with labels, measure the judge's agreement. ``output``: write one ``{"score", "reason"}``
        per row. Returns the judge's label, the row count, the scores and the agreement (None without
        labels of both classes)."""
        import json

        from rag.evaluation.judge_file import agreement, load_rows, score_rows
        from rag.evaluation.judges import judge_label, make_judge

        if path is None:
            raise InputError(f"rag judge {metric} FILE: give the JSONL file to score.")
        rows = load_rows(path, metric)  # every line is checked before any model loads
        scorer = make_judge(self.config, judge)
        bar = progress_bar(None, progress, total=len(rows), desc="Judging", unit="row", leave=False)
        try:
            on_row = None if bar is None else lambda done: bar.update(done - bar.n)
            scored, seconds = score_rows(scorer, rows, progress=on_row)
        finally:
            if bar is not None:
                bar.close()
        if output:
            Path(output).write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in scored))
        return {"judge": judge_label(self.config, judge), "metric": metric, "rows": len(rows), "seconds": seconds,
                "scores": scored, "agreement": agreement([s["score"] for s in scored], [r.label for r in rows],
                                                         float(getattr(scorer, "threshold", 0.5)), seconds)}

    def calibrate_judge(self, reset: bool = False, progress: bool = True, judge: Any = None) -> dict[str, Any]:
        """Fit the probability judge to the stored labels (``rag label``, ``--import``) and keep the
        calibration in the storage folder, where the judge uses it from then on; ``reset`` removes it.
        Returns where it is, each fitted metric (n, threshold or weights, held-out agreement before and
        after, cross-validated) and why other metrics were left as shipped. ``judge``: the
        :class:`ProbabilityJudge` to measure the labelled rows with (default: the configured model)."""
        from rag.evaluation import calibration
        from rag.evaluation.judges.probability import COEFFICIENTS, FEATURES, ProbabilityJudge

        path = calibration.path_in(self.config.storage_dir)
        if reset:
            return {"path": str(path), "removed": calibration.reset(self.config.storage_dir)}
        self._check_storage()
        labels = self.stored_labels()
        calibration.labels_by_metric(labels)  # too few labels: say so before the model loads
        judge = judge or ProbabilityJudge.from_config(self.config, model=self.config.local_judge_model)
        bar = progress_bar(None, progress, total=len(labels), desc="Measuring labelled rows", unit="row", leave=False)
        try:
            on_row = None if bar is None else lambda done, total: bar.update(done - bar.n)
            fitted, skipped = calibration.calibrate(judge, labels, COEFFICIENTS, FEATURES, progress=on_row)
        finally:
            if bar is not None:
                bar.close()
        if not fitted:
            raise calibration.need_labels(skipped)
        saved = calibration.save(self.config.storage_dir, self.config.local_judge_model, fitted)
        return {"path": str(saved), "model": self.config.local_judge_model, "metrics": fitted, "skipped": skipped}

    def generate_questions(self, path: str | Path, n: int = 50, seed: int = 0, progress: bool = True):
        """Up to ``n`` checked questions about the PDFs under ``path``, written by the configured
        generator (``.write(file)`` saves them for :meth:`evaluate`)."""
        from rag.evaluation.generate_questions import generate_questions

        bar = progress_bar(None, progress, total=n, desc="Questions kept", unit="q", leave=False)
        try:
            return generate_questions(self.config, path, n=n, seed=seed,
                                      progress=None if bar is None else lambda kept, tried: bar.update(kept - bar.n))
        finally:
            if bar is not None:
                bar.close()

    def evaluate(self, questions: Any, retrievers: list[str | RetrieverSpec] | None = None,
                 judge: str | None = None, progress: bool = True, output_dir: str | Path | None = None,
                 limit: int | None = None, grid: str | Path | None = None, fail_under: Any = None, **options: Any):
        """Run ``questions`` (a file path or a list) through each retriever, score the RAG triad
        with TruLens, and return per-question rows and a leaderboard (see rag.evaluation).

        ``grid``: a TOML sweep file whose versions join ``retrievers``. ``fail_under``: minimum means,
        e.g. ``["groundedness=0.7", "hit_rate@5=0.8"]``; the results' ``verdict`` says which version
        fell below. ``options`` go to :func:`rag.evaluation.run.evaluate`: ``at`` (retrieval cut-offs),
        ``cache``, ``workers``, ``screen`` (drop versions that retrieve significantly worse before
        answering), ``early_stop`` (stop a version once it is clearly worse than the leader),
        ``app_name``, ``feedback_timeout``. A ``|`` in a retriever spec sweeps a parameter.
        """
        from rag.evaluation.gate import gate_cutoffs, parse_thresholds
        from rag.evaluation.run import DEFAULT_AT, cutoffs, evaluate
        from rag.evaluation.sweep import grid_specs

        gates = parse_thresholds(fail_under)  # bad minimums fail before any model loads
        if gates:
            options["at"] = cutoffs([*cutoffs(options.get("at", DEFAULT_AT)), *gate_cutoffs(gates)])
        versions = [retrievers] if isinstance(retrievers, (str, RetrieverSpec)) else list(retrievers or [])
        versions += grid_specs(grid) if grid else []
        results = evaluate(self, questions, retrievers=versions or RETRIEVER_KINDS.names(),
                           judge=judge or self.config.judge, progress=progress, output_dir=output_dir,
                           limit=limit, **options)
        results.verdict = results.gate(gates) if gates else None
        return results


class QueryStream:
    """The answer's text as it is written (iterate), then the whole :class:`QueryResult` (``result``)."""

    def __init__(self, response: Any, finish: Any):
        self._response, self._finish = response, finish
        self._parts: list[str] = []
        self._result: QueryResult | None = None
        self._started = time.perf_counter()

    def __iter__(self):
        for token in self._response.response_gen:
            self._parts.append(token)
            yield token
        self._close()

    @property
    def result(self) -> QueryResult:
        if self._result is None:
            for _ in self:  # read whatever was not read yet
                pass
        return self._result

    def _close(self) -> None:
        if self._result is None:
            timings = self._response.metadata.setdefault("timings", {})
            streamed = time.perf_counter() - self._started  # generation ran while the caller read
            timings["generate"] = timings.get("generate", 0.0) + streamed
            timings["total"] = timings.get("total", 0.0) + streamed
            self._result = self._finish("".join(self._parts))


def _result(question: str, engine: Any, response: Any, answer: str) -> QueryResult:
    from rag.generation.synthesize import NO_ANSWER
    from rag.retrieval.engine import sources_of

    meta = response.metadata or {}
    answer, sources = answer.strip() or NO_ANSWER, sources_of(response.source_nodes)
    cited, unknown = citations(answer, len(sources))
    return QueryResult(
        question=question, answer=answer, sources=sources, retriever=engine.spec.name,
        kind=engine.spec.kind, params=engine.spec.values,
        timings={k: round(v, 4) for k, v in meta.get("timings", {}).items()},
        usage=dict(meta.get("usage", {})), finish_reason=meta.get("finish_reason"),
        cited=cited, unknown_citations=unknown,
    )


def citations(answer: str, sources: int) -> tuple[list[int], list[int]]:
    """The source numbers an answer cites as ``[n]`` (also ``[1, 2]``): (valid, unknown), each sorted."""
    import re

    numbers = {int(n) for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", answer) for n in group.split(",")}
    return sorted(n for n in numbers if 1 <= n <= sources), sorted(n for n in numbers if not 1 <= n <= sources)


def _check_question(question: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise InputError("The question is empty: ask something.")
