"""Early stopping's own logic: when a version is stopped, and that equal versions are (almost) never stopped."""

import random

import pytest

from rag.evaluation.early_stop import EarlyStopping, looks, sign_test

pytestmark = pytest.mark.unit


def run(scores: dict[str, list[float]], **kw) -> EarlyStopping:
    """Feed the scores question by question, only to running versions, as the evaluation loop does."""
    total = len(next(iter(scores.values())))
    stopping = EarlyStopping(list(scores), total, **kw)
    for i in range(total):
        for version in stopping.running:
            stopping.add(version, scores[version][i])
        stopping.check()
    return stopping


def test_looks_double_and_end_at_the_last_question():
    assert looks(12) == [4, 8, 12]
    assert looks(40) == [4, 8, 16, 32, 40]
    assert looks(3) == [3]
    assert looks(0) == []


def test_sign_test_is_the_binomial_tail():
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 0) == pytest.approx(1 / 8)
    assert sign_test(2, 1) == pytest.approx(4 / 8)


def test_a_version_that_keeps_losing_is_stopped_with_its_evidence():
    scores = {"good": [1.0] * 40, "poor": [0.0] * 40, "also_good": [1.0] * 39 + [0.0]}
    stopping = run(scores)
    assert [s.version for s in stopping.stopped] == ["poor"]
    stop = stopping.stopped[0]
    assert stop.leader == "good" and stop.better == 0 and stop.worse == stop.after
    assert stop.after < 40  # it answered fewer questions than the others
    assert stop.p_value <= stop.threshold == pytest.approx(0.05 / (5 * 6))
    text = stopping.summary()
    assert "poor: stopped after" in text and "not stopped" in text and "good, also_good" in text


def test_a_stopped_version_gets_no_more_questions():
    stopping = run({"a": [1.0] * 40, "b": [0.0] * 40})
    assert len(stopping.scores["b"]) == stopping.stopped[0].after < len(stopping.scores["a"]) == 40


def test_twelve_questions_stop_nothing_unless_the_loss_is_overwhelming():
    close = {"a": [1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1], "b": [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]}
    assert run(close).stopped == []  # 6 losses, 0 wins: not enough after correcting for looks and pairs
    assert "no version stopped" in run(close).summary()


def test_a_failed_question_counts_as_zero():
    stopping = run({"a": [1.0] * 16, "b": [None] * 16})
    assert [s.version for s in stopping.stopped] == ["b"]


def test_equal_versions_are_stopped_at_most_at_the_promised_rate():
    rng = random.Random(7)
    false_stops = 0
    for _ in range(400):
        scores = {v: [float(rng.random() < 0.6) for _ in range(64)] for v in ("a", "b", "c")}
        false_stops += bool(run(scores).stopped)
    assert false_stops / 400 <= 0.05
