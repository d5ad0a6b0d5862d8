"""Which tasks the Ray executor submits again itself: those whose last start was on a node that has stayed dead
(Ray's own retry of such a task can stay pending for good). Pure logic: no Ray needed."""

from collections import Counter

import pytest

from rag.executors.ray_cluster import MAX_RETRIES, STRANDED_AFTER_S, stranded

pytestmark = pytest.mark.unit


def test_a_task_is_resubmitted_only_after_its_node_has_been_dead_for_the_grace_period():
    dead_since: dict[int, float] = {}
    last_nodes = {0: "dead", 1: "alive", 2: "dead"}
    resubmitted: Counter[int] = Counter()
    # Task 3 has not started: it waits for a CPU and is never called stranded.
    assert stranded([0, 1, 2, 3], last_nodes, {"alive"}, dead_since, 100.0, resubmitted) == []
    assert dead_since == {0: 100.0, 2: 100.0}
    assert stranded([0, 1, 2, 3], last_nodes, {"alive"}, dead_since, 100.0 + STRANDED_AFTER_S - 1, resubmitted) == []
    assert stranded([0, 1, 2, 3], last_nodes, {"alive"}, dead_since, 100.0 + STRANDED_AFTER_S, resubmitted) == [0, 2]


def test_a_task_retried_on_a_live_node_is_no_longer_stranded():
    dead_since = {0: 0.0}
    assert stranded([0], {0: "alive"}, {"alive"}, dead_since, STRANDED_AFTER_S * 2, Counter()) == []
    assert dead_since == {}


def test_resubmissions_stop_at_the_retry_limit():
    resubmitted = Counter({0: MAX_RETRIES, 1: MAX_RETRIES - 1})
    assert stranded([0, 1], {0: "dead", 1: "dead"}, set(), {0: 0.0, 1: 0.0}, STRANDED_AFTER_S, resubmitted) == [1]


def test_no_task_is_stranded_while_every_cpu_is_busy():
    dead_since = {0: 0.0}
    assert stranded([0], {0: "dead"}, None, dead_since, STRANDED_AFTER_S * 2, Counter()) == []
    assert dead_since == {}  # the clock starts again once a CPU is free
