"""Where the parallel parts of ingest and evaluation run, by the ``executor`` setting (one module each here).

An executor maps a top-level function over items, ``function(item, *shared)``, and yields
``(index, outcome)`` as outcomes arrive (any order). An outcome is the function's result, or a
:class:`TaskFailed` naming the worker when the task failed for good; the caller decides whether
that stops its job. Executors only compute: whatever is written (the index commit, TruLens
records) is written by the calling process, so one writer stays one writer.

- ``local``: in this process, one item after the other, in order.
- ``ray``: Ray tasks across a cluster (``pip install -e ".[ray]"``); a task whose worker dies is
  retried by Ray on another.

Executors open lazily (a Ray cluster is joined on the first ``map``) and are context managers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from rag.errors import RagError
from rag.registry import Registry


class TaskFailed(RagError):
    """A task that failed for good (after the executor's retries), with the worker that ran it last."""

    def __init__(self, worker: str, reason: str):
        super().__init__(f"{worker}: {reason}")
        self.worker, self.reason = worker, reason

    def __reduce__(self):  # picklable with its two arguments (a Ray task may return one)
        return TaskFailed, (self.worker, self.reason)


class Executor(Protocol):
    name: str
    # True when a task may run on another machine: its inputs travel as data, not as local paths.
    remote: bool

    def map(self, function: Callable[..., Any], items: Sequence[Any],
            shared: Sequence[Any] = ()) -> Iterator[tuple[int, Any]]: ...

    def summary(self) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc: Any) -> None: ...


@dataclass(frozen=True)
class ExecutorPlugin:
    name: str
    help: str
    open: Callable[[Any], Executor]  # config -> an executor, not yet started
    order: int = 100


EXECUTORS: Registry[ExecutorPlugin] = Registry("executor", "executor", "rag.executors")


def open_executor(config: Any) -> Executor:
    """The executor the config's ``executor`` setting names (started on first use)."""
    return EXECUTORS.get(config.executor).open(config)


def in_order(outcomes: Iterable[tuple[int, Any]], count: int) -> list[Any]:
    """The outcomes of ``map`` as a list in item order."""
    ordered: list[Any] = [None] * count
    for index, outcome in outcomes:
        ordered[index] = outcome
    return ordered
