"""The ``local`` executor: every task in this process, one after the other, in order."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from rag.executors import ExecutorPlugin


class LocalExecutor:
    name = "local"
    remote = False

    def __init__(self, config: Any = None):
        self.tasks = 0

    def map(self, function: Callable[..., Any], items: Sequence[Any],
            shared: Sequence[Any] = ()) -> Iterator[tuple[int, Any]]:
        for index, item in enumerate(items):
            self.tasks += 1
            yield index, function(item, *shared)  # an exception stops the job, as it always did

    def summary(self) -> str:
        return f"local: {self.tasks} task(s) in this process"

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


PLUGIN = ExecutorPlugin(name="local", help="in this process (default)", open=LocalExecutor, order=0)
