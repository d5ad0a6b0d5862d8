"""The ``ray`` executor: tasks on a Ray cluster (``pip install -e ".[ray]"``; Ray is imported only here).

The cluster is the one at ``ray_address`` (or ``RAY_ADDRESS``); with neither, Ray starts one on
this machine for the run. A process that already called ``ray.init`` (a notebook, a test) is used
as it is and left connected. Every task may run ``MAX_RETRIES`` more times when its worker process
or node dies (Ray's own retry); each start is noted in a small ledger actor on this machine, so a
retried task is reported with the worker that stopped, and a task that failed for good with the
worker that ran it last. A task whose node died and that Ray's retry left pending is submitted again
by the map itself (``stranded``).
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

from rag.errors import ConfigError
from rag.executors import ExecutorPlugin, TaskFailed

MAX_RETRIES = 3
CANCEL_WAIT_S = 30.0  # an interrupted map waits this long for its cancelled tasks to stop
POLL_S = 5.0  # how often a map with nothing finished looks for tasks stranded on a dead node
# Ray retries a dead node's tasks itself, but a retry can stay pending for good (ray-project/ray#44578): a task
# whose last start was on a node that has been dead this long, while a CPU stood free, is cancelled and submitted
# again by the map (a retry queued behind busy CPUs is only waiting).
STRANDED_AFTER_S = 45.0
# Worker processes start with this process's view of these (the bundled models are read offline).
WORKER_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_NUM_THREADS", "RAG_LLAMACPP_VERBOSITY")
INSTALL_HINT = 'executor=ray needs Ray: pip install -e ".[ray]" (or set executor = "local").'


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    name = "ray"
    remote = True

    def __init__(self, config: Any):
        import importlib.util

        if importlib.util.find_spec("ray") is None:  # say so before any work starts
            raise ConfigError(INSTALL_HINT)
        self.address = config.ray_address
        self.ray: Any = None
        self.started_here = False
        self.ledger: Any = None
        self.by_worker: Counter[str] = Counter()
        self.retried: list[str] = []
        self.failed: list[str] = []
        self.resubmitted: list[str] = []  # tasks the map submitted again (Ray's retry stayed pending)

    # ------------------------------------------------------------ cluster
    def start(self) -> Any:
        if self.ray is not None:
            return self.ray
        ray = import_ray()
        if not ray.is_initialized():
            env = {name: os.environ[name] for name in WORKER_ENV if name in os.environ}
            env.setdefault("HF_HUB_OFFLINE", "1")
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            # Workers' own output (model loading, TruLens) stays in Ray's logs; failures come back as outcomes.
            ray.init(address=address, include_dashboard=False if address is None else None, log_to_driver=False,
                     runtime_env={"env_vars": env}, configure_logging=False)
            self.started_here = True
        self.ray = ray
        self.ledger = _ledger(ray)
        # Wait until the ledger runs: a task blocked on it (ray.get) frees its CPU, and Ray would start the next
        # task on that node in another process beside it (two tasks and two models on one CPU).
        ray.get(self.ledger.starts.remote(""))
        return ray

    def machines(self) -> int:
        """How many machines (node addresses) the cluster has now."""
        ray = self.start()
        return len({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})

    # ------------------------------------------------------------ tasks
    def map(self, function: Callable[..., Any], items: Sequence[Any],
            shared: Sequence[Any] = ()) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        ray = self.start()
        task = ray.remote(max_retries=MAX_RETRIES)(_run_task)
        shared_refs = [ray.put(value) for value in shared]  # sent once, not once per task
        key = os.urandom(6).hex()

        def submit(index: int) -> Any:
            return task.remote(function, items[index], self.ledger, f"{key}/{index}", *shared_refs)

        pending = {submit(index): index for index in range(len(items))}
        dead_since: dict[int, float] = {}
        resubmitted: Counter[int] = Counter()
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                for ref in done:
                    index = pending.pop(ref)
                    yield index, self._outcome(ray, ref, f"{key}/{index}")
                if done:
                    continue
                last_nodes = ray.get(self.ledger.last_nodes.remote(key))
                alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
                idle = ray.available_resources().get("CPU", 0) >= 1
                for index in stranded(pending.values(), last_nodes, alive if idle else None, dead_since,
                                      time.monotonic(), resubmitted):
                    ref = next(ref for ref, i in pending.items() if i == index)
                    ray.cancel(ref, force=True)
                    del pending[ref]
                    pending[submit(index)] = index
                    resubmitted[index] += 1
                    dead_since.pop(index, None)
                    self.resubmitted.append(str(index))
        finally:
            if pending:  # interrupted: leave no task running for nobody, and return once they have stopped
                for ref in pending:
                    # force: a task interrupted half-way can leave its process's imports broken; a new one starts clean
                    ray.cancel(ref, force=True)
                ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
        self._note_retries(ray, key, len(items))

    def _outcome(self, ray: Any, ref: Any, task_id: str) -> Any:
        try:
            worker, result = ray.get(ref)
        except ray.exceptions.RayError as exc:  # its worker died more often than the task may be retried
            starts = ray.get(self.ledger.starts.remote(task_id))
            worker = starts[-1] if starts else "an unknown worker"
            failure = TaskFailed(worker, _first_line(exc))
            self.failed.append(str(failure))
            return failure
        self.by_worker[worker] += 1
        if isinstance(result, TaskFailed):
            self.failed.append(str(result))
        return result

    def _note_retries(self, ray: Any, key: str, count: int) -> None:
        starts = ray.get(self.ledger.all_starts.remote(key))
        for task_id, workers in sorted(starts.items(), key=lambda kv: int(kv[0].split("/")[1])):
            if len(workers) > 1:
                self.retried.append(f"task {task_id.split('/')[1]} stopped on {', '.join(workers[:-1])}; "
                                    f"run again on {workers[-1]}")

    # ------------------------------------------------------------ report
    def summary(self) -> str:
        counts = ", ".join(f"{worker}: {n}" for worker, n in sorted(self.by_worker.items()))
        line = f"ray: {sum(self.by_worker.values())} task(s) on {len(self.by_worker)} worker(s) ({counts})"
        if self.retried:
            line += f"; retried after a worker stopped: {'; '.join(self.retried)}"
        if self.resubmitted:
            line += f"; submitted again after Ray's retry stalled: task {', '.join(self.resubmitted)}"
        if self.failed:
            line += f"; failed: {'; '.join(self.failed)}"
        return line

    def close(self) -> None:
        if self.ray is not None and self.started_here:
            self.ray.shutdown()
        self.ray = None

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def stranded(pending: Any, last_nodes: dict[int, str], alive: set[str] | None, dead_since: dict[int, float],
             now: float, resubmitted: Counter[int]) -> list[int]:
    """The pending tasks to submit again: their last start was on a node dead for ``STRANDED_AFTER_S``.

    ``last_nodes`` maps a task's index to the node of its last start (tasks not started yet are waiting for a
    CPU, not stranded); ``alive`` is the live nodes, or None while no CPU is free (every pending task may just
    be queued); ``dead_since`` is updated with when each task was first seen stranded. A task is submitted
    again at most ``MAX_RETRIES`` times.
    """
    out = []
    for index in pending:
        node = last_nodes.get(index)
        if node is None or alive is None or node in alive:
            dead_since.pop(index, None)
            continue
        since = dead_since.setdefault(index, now)
        if now - since >= STRANDED_AFTER_S and resubmitted[index] < MAX_RETRIES:
            out.append(index)
    return out


def worker_name() -> str:
    """This worker process, as reports name it: machine address, Ray node, process id."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return f"{socket.gethostbyname(socket.gethostname())} node {node[:8]} pid {os.getpid()}"


def _run_task(function: Callable[..., Any], item: Any, ledger: Any, task_id: str, *shared: Any) -> tuple[str, Any]:
    """Runs on a worker: note the start, run, and hand back (worker, result or TaskFailed)."""
    import ray

    name = worker_name()
    # Before the work: a worker that dies mid-task is on record.
    ray.get(ledger.start.remote(task_id, name, ray.get_runtime_context().get_node_id()))
    try:
        return name, function(item, *shared)
    except Exception as exc:  # an error of the work itself: retrying on another worker would fail the same way
        return name, TaskFailed(name, f"{type(exc).__name__}: {exc}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _ledger(ray: Any) -> Any:
    """An actor on this machine's node that notes which worker started each task (survives worker nodes)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    class Ledger:
        def __init__(self) -> None:
            self.workers: dict[str, list[str]] = {}
            self.nodes: dict[str, str] = {}  # task id -> the node of its last start

        def start(self, task_id: str, worker: str, node: str) -> None:
            self.workers.setdefault(task_id, []).append(worker)
            self.nodes[task_id] = node

        def last_nodes(self, key: str) -> dict[int, str]:
            return {int(t.split("/")[1]): n for t, n in self.nodes.items() if t.startswith(key + "/")}

        def starts(self, task_id: str) -> list[str]:
            return self.workers.get(task_id, [])

        def all_starts(self, key: str) -> dict[str, list[str]]:
            return {t: w for t, w in self.workers.items() if t.startswith(key + "/")}

    here = ray.get_runtime_context().get_node_id()
    return Ledger.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()


PLUGIN = ExecutorPlugin(name="ray", help='Ray tasks on a cluster (pip install -e ".[ray]"; ray_address)', open=RayExecutor,
                        order=1)
