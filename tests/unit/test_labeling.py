"""`rag label`'s session without a terminal: keys, undo, skip, quit and resume; JSONL export and
import; the judges' agreement with the labels (balanced accuracy, AUC, Cohen's kappa) by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rag.errors import InputError
from rag.evaluation.judge_file import cohen_kappa, kappa_interval, load_rows
from rag.evaluation.labeling import (
    LabelingSession,
    export_labels,
    import_labels,
    label_agreement,
    rank_by_labels,
    select_rows,
    with_labelled_correctness,
)
from rag.evaluation.labels import PARTLY_RIGHT, Label, LabelStore


def row(n: int, contexts: int = 2, version: str = "basic llm=m judge=lexical", **extra) -> dict:
    return {"version": version, "retriever": version.split()[0], "question": f"question {n}?",
            "answer": f"answer {n} [1]", "contexts": [f"context {n}.{i}" for i in range(1, contexts + 1)],
            "reference_answer": f"reference {n}", "record_id": f"record-{n}", **extra}


@pytest.fixture
def store(tmp_path):
    labels = LabelStore(f"sqlite:///{tmp_path / 'labels.sqlite'}")
    yield labels
    labels.close()


def press(session: LabelingSession, keys: str) -> list[str]:
    return [session.press(k) for k in keys]


def stored(store: LabelStore) -> list[tuple[str, str, int, str | None]]:
    return [(l.record_id, l.metric, l.value, l.comment) for l in store.labels()]


def test_keys_label_the_answer_grounding_and_each_context(store):
    session = LabelingSession([row(1), row(2)], store, who="ann")
    assert session.stage == "answer" and session.position == (1, 2)
    press(session, "cgri")  # the last context finishes the row
    assert stored(store) == [("record-1", "answer", 1, None), ("record-1", "groundedness", 1, None),
                             ("record-1", "context_relevance", 1, "context 1"),
                             ("record-1", "context_relevance", 0, "context 2")]
    first = store.labels()[0]
    assert (first.annotator, first.source, first.retriever, first.question, first.answer) == (
        "ann", "rag label", "basic llm=m judge=lexical", "question 1?", "answer 1 [1]")
    assert store.labels(metric="context_relevance")[1].contexts == ["context 1.2"]
    assert session.row["record_id"] == "record-2" and session.labelled == 1


def test_partly_is_stored_as_half_right_and_n_ends_the_contexts(store):
    session = LabelingSession([row(1), row(2)], store)
    press(session, "pun")  # partly, not grounded, no context labels
    press(session, "wgn")
    assert stored(store) == [("record-1", "answer", 0.5, None), ("record-1", "groundedness", 0, None),
                             ("record-2", "answer", 0, None), ("record-2", "groundedness", 1, None)]
    assert session.done and not session.quit


def test_skip_stores_nothing_and_a_wrong_key_changes_nothing(store):
    session = LabelingSession([row(1), row(2)], store)
    message = session.press("g")  # grounding before the answer
    assert "does nothing here" in message and session.stage == "answer"
    press(session, "s")
    assert session.row["record_id"] == "record-2" and session.skipped == 1 and store.labels() == []


def test_undo_within_a_row_and_back_into_the_previous_row(store):
    session = LabelingSession([row(1, contexts=1), row(2, contexts=1)], store)
    press(session, "cz")  # changed their mind
    assert session.stage == "answer"
    press(session, "wgr")  # row 1 finished and stored
    assert len(store.labels()) == 3 and session.row["record_id"] == "record-2"
    session.press("z")  # at row 2's start: row 1 is reopened, its last key (r) taken back, its labels removed
    assert session.row["record_id"] == "record-1" and session.stage == "context 1" and store.labels() == []
    press(session, "i")
    assert stored(store)[-1] == ("record-1", "context_relevance", 0, "context 1") and len(store.labels()) == 3


def test_undo_after_a_skip_goes_back_to_the_skipped_row(store):
    session = LabelingSession([row(1), row(2)], store)
    press(session, "s")
    assert session.press("z") == "back to the skipped row"
    assert session.row["record_id"] == "record-1" and session.skipped == 0
    assert session.press("z") == "nothing to undo"


def test_quit_mid_row_stores_nothing_of_it_and_a_new_session_resumes_there(store):
    rows = [row(1), row(2), row(3)]
    session = LabelingSession(rows, store)
    press(session, "cgnwq")  # row 1 done; row 2 half labelled, then quit
    assert session.done and session.quit and {l.record_id for l in store.labels()} == {"record-1"}
    again = LabelingSession(rows, store)
    assert again.already_labelled == 1 and again.row["record_id"] == "record-2" and again.position == (1, 2)


def test_rows_are_chosen_by_version_and_sampled_with_a_seed():
    rows = [row(n, version=f"{'basic' if n % 2 else 'auto'} llm=m judge=lexical") for n in range(10)]
    assert [r["record_id"] for r in select_rows(rows, version="auto")] == [f"record-{n}" for n in (0, 2, 4, 6, 8)]
    one, two = select_rows(rows, sample=3, seed=7), select_rows(rows, sample=3, seed=7)
    assert one == two and len(one) == 3 and one != select_rows(rows, sample=3, seed=8)
    with pytest.raises(InputError, match="--version 'nope'"):
        select_rows(rows, version="nope")


def test_disagree_keeps_rows_where_a_judge_contradicts_key_facts():
    rows = [row(1, correctness=1.0, groundedness=0.9, answer_relevance=0.9),
            row(2, correctness=0.0, groundedness=0.9, answer_relevance=0.9),  # passes a wrong answer
            row(3, correctness=1.0, groundedness=0.1, answer_relevance=0.9)]  # fails a right one
    assert [r["record_id"] for r in select_rows(rows, disagree=True)] == ["record-2", "record-3"]


def test_export_writes_judge_lines_that_import_reads_back_once(store, tmp_path):
    session = LabelingSession([row(1)], store, who="ann")
    press(session, "pgrn")  # n: the second context left unlabelled
    path = tmp_path / "labels.jsonl"
    assert export_labels(store, path) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["metric"] == "answer" and lines[0]["label"] == PARTLY_RIGHT and "partly" not in lines[0]
    assert lines[1]["contexts"] == ["context 1.1", "context 1.2"] and lines[1]["who"] == "ann"
    assert lines[2]["context"] == "context 1.1" and lines[2]["when"]
    # `rag judge groundedness FILE` reads the groundedness lines of the same file.
    (grounded,) = load_rows(path, "groundedness")
    assert grounded.inputs == (["context 1.1", "context 1.2"], "answer 1 [1]") and grounded.label == 1
    assert import_labels(store, path) == (0, 3)  # already stored: nothing doubles
    other = LabelStore(f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert import_labels(other, path) == (3, 0)
    assert stored(other) == stored(store) and other.labels()[0].created == store.labels()[0].created


def test_import_names_the_bad_line_and_stores_nothing(store, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"metric": "groundedness", "question": "q?", "answer": "a", "contexts": ["c"],
                                "label": 1}) + "\n" + json.dumps({"metric": "groundedness", "question": "q?",
                                                                  "label": 2}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl, line 2: \"label\" of groundedness must be 0 or 1"):
        import_labels(store, path)
    assert store.labels() == []
    path.write_text(json.dumps({"metric": "groundedness", "question": "q?", "label": 0.5}) + "\n")
    with pytest.raises(InputError, match=r"line 1: \"label\" of groundedness must be 0 or 1, got 0.5"):
        import_labels(store, path)  # partly is for answers only
    with pytest.raises(InputError, match="groundedness label value 0.5"):
        store.add(Label(metric="groundedness", value=0.5, question="q?"))


def test_partly_from_before_it_had_its_own_value_reads_as_half(store, tmp_path):
    """Stored as 0 with the comment "partly" by `rag label`, exported with "partly": true: both read as 0.5;
    a rag serve thumbs-down whose comment happens to say "partly" stays a 0."""
    old = {"metric": "answer", "value": 0, "question": "q?", "comment": "partly"}
    store.add(Label(**old, source="rag label"))
    store.add(Label(**old, source="feedback"))
    assert [(l.value, l.comment) for l in store.labels()] == [(PARTLY_RIGHT, None), (0, "partly")]
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"metric": "answer", "question": "q2?", "label": 0, "partly": True}) + "\n")
    other = LabelStore(f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert import_labels(other, path) == (1, 0) and other.labels()[0].value == PARTLY_RIGHT


def test_kappa_by_hand():
    predicted, labels = np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool)
    # observed 0.75; by chance 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa (0.75 - 0.5) / 0.5
    assert cohen_kappa(predicted, labels) == pytest.approx(0.5)
    assert cohen_kappa(labels, labels) == 1.0
    assert cohen_kappa(np.ones(4, bool), np.ones(4, bool)) is None  # chance agrees fully
    low, high = kappa_interval(np.tile(predicted, 10), np.tile(labels, 10))
    assert low < 0.5 < high


def test_agreement_with_labels_by_hand(store):
    rows = pd.DataFrame([row(n, judge="lexical", groundedness=g, correctness=c, context_relevance=0.8)
                         for n, (g, c) in enumerate([(0.9, 1.0), (0.8, 0.0), (0.2, 0.0), (0.3, 1.0), (0.7, 1.0)])])
    grounded = [1, 1, 0, 1, 0]
    right = [1, 0, 0, 0, 1]
    for n, (g, r) in enumerate(zip(grounded, right)):
        common = {"question": f"question {n}?", "answer": f"answer {n} [1]", "record_id": f"record-{n}"}
        store.add(Label(metric="groundedness", value=g, **common))
        store.add(Label(metric="answer", value=r, **common))
    table = label_agreement(rows, store.labels()).set_index("metric")
    ground = table.loc["groundedness"]
    # judge says yes on rows 0, 1, 4; labels yes on 0, 1, 3: recall 2/3, specificity 1/2
    assert ground["judge"] == "lexical" and ground["n"] == 5
    assert ground["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # observed 3/5; by chance 3/5 * 3/5 + 2/5 * 2/5 = 13/25; kappa (15/25 - 13/25) / (12/25)
    assert ground["kappa"] == pytest.approx(2 / 12)
    assert ground["kappa_lo"] <= ground["kappa"] <= ground["kappa_hi"]
    correct = table.loc["correctness"]  # key facts say right on 0, 3, 4; labels on 0, 4
    assert correct["judge"] == "key facts" and correct["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert correct["n"] == 5 and correct["partly"] == 0
    assert "context_relevance" not in table.index  # no context labels


def test_partly_right_answers_are_left_out_of_agreement_and_counted(store):
    # Key facts say right on rows 0, 1, 2, 3; labels: right, wrong, partly, partly.
    rows = pd.DataFrame([row(n, judge="lexical", correctness=1.0) for n in range(4)])
    for n, value in enumerate([1, 0, PARTLY_RIGHT, PARTLY_RIGHT]):
        store.add(Label(metric="answer", value=value, question=f"question {n}?", answer=f"answer {n} [1]",
                        record_id=f"record-{n}"))
    correct = label_agreement(rows, store.labels()).set_index("metric").loc["correctness"]
    # measured on rows 0 and 1 only (recall 1, specificity 0); correctness counts partly as half
    assert (correct["n"], correct["partly"]) == (2, 2) and correct["balanced_accuracy"] == pytest.approx(0.5)
    board = pd.DataFrame({"rank": [1], "version": [rows["version"][0]]})
    labelled = with_labelled_correctness(board, rows, store.labels())
    assert labelled["labelled_correct"][0] == pytest.approx(0.5) and labelled["labelled_correct_n"][0] == 4


def test_a_label_follows_the_same_answer_into_a_later_run(store):
    store.add(Label(metric="groundedness", value=0, question="question 1?", answer="answer 1 [1]", record_id="old"))
    store.add(Label(metric="groundedness", value=1, question="question 2?", answer="answer 2 [1]", record_id="old2"))
    rows = pd.DataFrame([row(1, judge="lexical", groundedness=0.2), row(2, judge="lexical", groundedness=0.9)])
    table = label_agreement(rows, store.labels())
    assert table["n"].tolist() == [2] and table["balanced_accuracy"].tolist() == [1.0]


def test_leaderboard_ranks_by_labelled_correctness(store):
    board = pd.DataFrame({"rank": [1, 2, 3], "version": ["a", "b", "c"], "vs_best": [None, "x", "y"]})
    rows = pd.DataFrame([{"version": v, "question": f"q{i}", "record_id": f"{v}{i}"} for v in "abc" for i in range(2)])
    for record, value in (("a0", 0), ("a1", 1), ("b0", 1), ("b1", 1)):
        store.add(Label(metric="answer", value=value, question="q", record_id=record))
    labelled = with_labelled_correctness(board, rows, store.labels())
    assert labelled["labelled_correct"].tolist()[:2] == [0.5, 1.0] and labelled["labelled_correct_n"].tolist() == [2, 2, 0]
    ranked = rank_by_labels(labelled)
    assert ranked["version"].tolist() == ["b", "a", "c"] and ranked["rank"].tolist() == [1, 2, 3]
    assert "vs_best" not in ranked and "labelled correctness" in ranked.attrs["ranked_by"]
    with pytest.raises(InputError, match="rag label"):
        rank_by_labels(with_labelled_correctness(board, rows, []))
