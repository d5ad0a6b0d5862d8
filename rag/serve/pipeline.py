"""The one loaded index and model that every request of ``rag serve`` shares.

- The model runs one job at a time on one thread (the in-process llama.cpp model is not made for
  concurrent generation); retrieval runs on a few threads of its own. Each has a bounded queue:
  when it is full a request is refused at once (:class:`Busy`, a 429) rather than left waiting.
- The index is reloaded when an ingest commits (the store's manifest changes): requests in flight
  finish on the index they started with; the model stays loaded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from rag.app import RAG
from rag.chat import Chat, Turn
from rag.config import Config
from rag.errors import InputError
from rag.retrieval import RETRIEVER_KINDS
from rag.retrieval.spec import RetrieverSpec
from rag.types import QueryResult, Source

log = logging.getLogger("rag.serve")

MAX_RETRY_AFTER_S = 300


class Busy(Exception):
    """A queue is full: try again after ``retry_after`` seconds."""

    def __init__(self, queue: str, retry_after: int):
        super().__init__(f"the {queue} queue is full")
        self.queue, self.retry_after = queue, retry_after


class WorkQueue:
    """At most ``workers`` jobs run at once and ``waiting`` more wait; beyond that :class:`Busy` at once."""

    def __init__(self, name: str, workers: int, waiting: int):
        self.name, self.workers, self.waiting = name, workers, waiting
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"rag-{name}")
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_s = 1.0  # a running mean of job time, for Retry-After

    @property
    def depth(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def submit(self, job: Callable[[], Any]) -> Future:
        with self._lock:
            if self._admitted >= self.workers + self.waiting:
                ahead = self._admitted / self.workers
                raise Busy(self.name, min(MAX_RETRY_AFTER_S, max(1, math.ceil(self._mean_s * ahead))))
            self._admitted += 1
        try:
            return self._executor.submit(self._timed, job)
        except RuntimeError:  # shutting down
            self._release(0.0)
            raise Busy(self.name, 1) from None

    def _timed(self, job: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return job()
        finally:
            self._release(time.perf_counter() - started)

    def _release(self, seconds: float) -> None:
        with self._lock:
            self._admitted -= 1
            if seconds:
                self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class ServedRAG(RAG):
    """A :class:`RAG` whose generator is the server's, loaded once and kept across index reloads."""

    def __init__(self, config: Config, shared_llm: Callable[[], Any]):
        super().__init__(config, progress=False)
        self._shared_llm = shared_llm

    @property
    def llm(self) -> Any:
        return self._shared_llm()


@dataclass
class Loaded:
    """One loaded index: the app, the manifest version it was loaded at, its retrievers by spec name."""

    app: RAG
    version: str | None
    retrievers: dict[str, Callable[[str], list[Source]]] = field(default_factory=dict)


@dataclass
class Answer:
    """A finished chat answer (``result`` is None when the client left before the end)."""

    standalone: str
    result: QueryResult | None


class Pipeline:
    def __init__(self, config: Config, model_waiting: int = 8, retrieve_workers: int = 2,
                 retrieve_waiting: int = 64):
        self.config = config
        self._llm: Any = None
        self._llm_lock = threading.Lock()
        self._load_lock = threading.Lock()  # index loads and retriever builds, one at a time
        self.model_queue = WorkQueue("model", 1, model_waiting)
        self.retrieve_queue = WorkQueue("retrieve", retrieve_workers, retrieve_waiting)
        self.loaded = self._load()
        self.reloads = 0

    # ------------------------------------------------------------ loading
    def llm(self) -> Any:
        with self._llm_lock:
            if self._llm is None:
                from rag.generation import make_llm

                self._llm = make_llm(self.config)
            return self._llm

    def _load(self) -> Loaded:
        """A fresh app over the current index, with every kind's default retriever built (so the
        first request does not pay for loading)."""
        app = ServedRAG(self.config, self.llm)
        version = _version(app)
        loaded = Loaded(app, version)
        for kind in RETRIEVER_KINDS.names():
            spec = app.spec(kind)
            loaded.retrievers[spec.name] = app.retriever(spec)
        return loaded

    def load_model(self) -> None:
        self.llm()

    def reload_if_changed(self) -> bool:
        """Load the index again when the store's manifest says an ingest committed since; True if it did."""
        current = _version(self.loaded.app)
        if current == self.loaded.version:
            return False
        with self._load_lock:
            if _version(self.loaded.app) == self.loaded.version:
                return False
            fresh = self._load()
            self.loaded = fresh  # one assignment: a request sees the old index or the new one, whole
            self.reloads += 1
        log.info("index reloaded (manifest updated %s)", fresh.version)
        return True

    # ------------------------------------------------------------ work
    def spec(self, name: str) -> RetrieverSpec:
        return self.loaded.app.spec(name)

    def retriever(self, spec: RetrieverSpec, loaded: Loaded | None = None) -> Callable[[str], list[Source]]:
        loaded = loaded or self.loaded
        found = loaded.retrievers.get(spec.name)
        if found is None:
            with self._load_lock:
                found = loaded.retrievers.get(spec.name)
                if found is None:
                    found = loaded.retrievers[spec.name] = loaded.app.retriever(spec)
        return found

    def retrieve(self, question: str, spec: RetrieverSpec) -> list[Source]:
        """The contexts of ``question``; runs on the calling thread (a retrieve-queue worker)."""
        check_question(question)
        return self.retriever(spec)(question)

    def answer(self, question: str, history: list[tuple[str, str]], spec: RetrieverSpec,
               on_text: Callable[[str], None], cancelled: Callable[[], bool]) -> Answer:
        """Answer ``question`` after ``history`` (earlier (question, answer) pairs), as ``rag chat`` does:
        a follow-up is condensed into a standalone question first. Runs on the model thread; hands each
        piece of text to ``on_text`` as it is written and stops early when ``cancelled()``."""
        check_question(question)
        loaded = self.loaded
        self.retriever(spec, loaded)  # its index loaded under the lock, not by two threads at once
        chat = Chat(loaded.app, retriever=spec)
        chat.turns = [Turn(q, q, QueryResult(question=q, answer=a, sources=[], retriever=spec.name, kind=spec.kind,
                                             params={})) for q, a in history]
        reply = chat.ask(question)
        pieces = iter(reply)
        try:
            for text in pieces:
                if cancelled():
                    return Answer(reply.standalone, None)
                on_text(text)
        finally:
            pieces.close()  # an early stop ends the generation at the next token
        return Answer(reply.standalone, reply.result)

    def shutdown(self) -> None:
        self.retrieve_queue.shutdown()
        self.model_queue.shutdown()


def check_question(question: Any) -> None:
    if not isinstance(question, str) or not question.strip():
        raise InputError("The question is empty: ask something.")


def _version(app: RAG) -> str | None:
    manifest = app.store.manifest()
    return None if manifest is None else str(manifest.get("updated"))
