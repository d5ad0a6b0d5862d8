"""The library API: ``RAG(config).ingest(path)``, ``.query(question, retriever=...)``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Config
from rag.errors import InputError
from rag.index import IndexStore, IngestReport
from rag.retrievers import KINDS, RetrieverSpec, build_query_engine, build_retrieval, retrieve_nodes


@dataclass
class Source:
    """A retrieved piece of text and where it comes from."""

    file: str
    page: int
    page_end: int
    score: float | None
    text: str

    @property
    def citation(self) -> str:
        pages = f"p. {self.page}" if self.page == self.page_end else f"pp. {self.page}-{self.page_end}"
        return f"{self.file} {pages}"


@dataclass
class QueryResult:
    question: str
    answer: str
    sources: list[Source]
    retriever: str  # full name with parameters
    kind: str
    params: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for source, raw in zip(self.sources, data["sources"]):
            raw["citation"] = source.citation
        data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        return data

    def __str__(self) -> str:
        lines = [self.answer, "", "Sources:"]
        for i, s in enumerate(self.sources, start=1):
            score = f" (score {s.score:.2f})" if s.score is not None else ""
            lines.append(f"  [{i}] {s.citation}{score}")
        return "\n".join(lines)


def sources_of(nodes: list[Any]) -> list[Source]:
    out = []
    for n in nodes:
        meta = n.node.metadata
        out.append(Source(file=meta.get("file_name", "?"), page=int(meta.get("page", 0)),
                          page_end=int(meta.get("page_end", meta.get("page", 0))),
                          score=None if n.score is None else float(n.score),
                          text=n.node.get_content(metadata_mode="none")))
    return out


class RAG:
    """Question answering over a folder of PDFs, with switchable retrievers."""

    def __init__(self, config: Config | None = None, progress: bool = True, **overrides: Any):
        self.progress = progress  # progress bars when an index is built on first use
        self.config = config.replace(**overrides) if config and overrides else config or Config.load(**overrides)
        self.store = IndexStore(self.config)
        self._indexes: dict[str, Any] = {}
        self._engines: dict[str, Any] = {}
        self._llm = None

    # ------------------------------------------------------------ ingestion
    def ingest(self, path: str | Path, progress: bool = True) -> IngestReport:
        """Index the PDFs under ``path`` for every retriever kind (incrementally)."""
        specs = [RetrieverSpec.parse(kind, self.config).parser_spec for kind in KINDS]
        report = self.store.sync(path, specs, progress=progress)
        self._indexes.clear()
        self._engines.clear()
        return report

    # ------------------------------------------------------------ querying
    def spec(self, retriever: str | RetrieverSpec = "basic", **params: Any) -> RetrieverSpec:
        return RetrieverSpec.parse(retriever, self.config, **params)

    @property
    def llm(self):
        if self._llm is None:
            from rag.models import llm

            self._llm = llm(self.config)
        return self._llm

    def index(self, spec: RetrieverSpec):
        """(VectorStoreIndex, StorageContext) for the spec's node parameters; built on first use."""
        key = spec.parser_spec.key
        if key not in self._indexes:
            self._indexes[key] = self.store.load(spec.parser_spec, progress=self.progress)
        return self._indexes[key]

    def query_engine(self, retriever: str | RetrieverSpec = "basic", **params: Any):
        """The LlamaIndex query engine of a retriever (what evaluation instruments)."""
        spec = self.spec(retriever, **params)
        if spec.name not in self._engines:
            index, storage = self.index(spec)
            self._engines[spec.name] = build_query_engine(spec, index, storage, self.llm, self.config)
        return self._engines[spec.name]

    def retrieve(self, question: str, retriever: str | RetrieverSpec = "basic", **params: Any) -> list[Source]:
        """The final context nodes (after window replacement / merging / rerank), no LLM call."""
        _check_question(question)
        spec = self.spec(retriever, **params)
        index, storage = self.index(spec)
        retriever_, postprocessors = build_retrieval(spec, index, storage, self.config)
        return sources_of(retrieve_nodes(retriever_, postprocessors, question))

    def query(self, question: str, retriever: str | RetrieverSpec = "basic", **params: Any) -> QueryResult:
        """Answer ``question`` from the indexed PDFs with the named retriever."""
        _check_question(question)
        engine = self.query_engine(retriever, **params)
        response = engine.query(question)
        meta = response.metadata or {}
        return QueryResult(
            question=question, answer=str(response.response or "").strip(),
            sources=sources_of(response.source_nodes), retriever=engine.spec.name,
            kind=engine.spec.kind, params=engine.spec.values,
            timings={k: round(v, 4) for k, v in meta.get("timings", {}).items()},
            usage=dict(meta.get("usage", {})),
        )


    # ------------------------------------------------------------ evaluation
    def evaluate(self, questions: Any, retrievers: list[str | RetrieverSpec] | None = None,
                 judge: str | None = None, progress: bool = True, output_dir: str | Path | None = None):
        """Run ``questions`` (a file path or a list) through each retriever, score the RAG triad
        with TruLens, and return per-question rows and a leaderboard (see rag.evaluation)."""
        from rag.evaluation import evaluate, load_questions

        if isinstance(questions, (str, Path)):
            questions = load_questions(questions)
        return evaluate(self, questions, retrievers=retrievers or list(KINDS), judge=judge or self.config.judge,
                        progress=progress, output_dir=output_dir)


def _check_question(question: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise InputError("The question is empty: ask something.")

