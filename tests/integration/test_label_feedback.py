"""Labels written into a real TruLens SQLite database as feedback results on the records they label:
what TruLens (and so its dashboard) reads back, per record and per version; syncing again changes
nothing, a changed label replaces the old value, an undone one disappears; and our own stored rows
never mistake a label for a judge."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rag.evaluation.labeling import sync_label_feedback
from rag.evaluation.labels import PARTLY_RIGHT, Label, LabelStore
from rag.evaluation.trulens.label_feedback import EVENT_ID_PREFIX

QUESTIONS = ("How many days of leave?", "Who approves expenses?")


@pytest.fixture
def recorded(tmp_path):
    """Two TruLens records of one app version (a tiny instrumented app, no model), and a label store."""
    from trulens.apps.app import TruApp
    from trulens.core.otel.instrument import instrument

    from rag.evaluation.trulens.session import flush, open_session

    url = f"sqlite:///{tmp_path / 'trulens.sqlite'}"
    session = open_session(url)

    class Echo:
        @instrument()
        def query(self, question: str) -> str:
            return f"answer to {question}"

    app = Echo()
    recorder = TruApp(app, app_name="rag", app_version="basic llm=m judge=lexical", main_method=app.query)
    ids = []
    for question in QUESTIONS:
        with recorder as recording:
            app.query(question)
        ids.append(recording.get().record_id)
    flush()
    store = LabelStore(url)
    yield url, session, ids, store
    store.close()


def label(store: LabelStore, record_id: str, metric: str, value: float, **extra) -> int:
    return store.add(Label(metric=metric, value=value, question="q", record_id=record_id, annotator="ann", **extra))


def label_columns(session, ids: list[str]) -> dict[str, dict[str, float]]:
    """What TruLens reads back: per record, each ``label: ...`` feedback and its value."""
    records, names = session.get_records_and_feedback(record_ids=ids)
    by_id = records.set_index("record_id")
    return {rid: {n: float(by_id.loc[rid, n]) for n in names if n.startswith("label: ") and by_id.loc[rid, n] == by_id.loc[rid, n]}
            for rid in ids}


def label_events(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM trulens_events WHERE event_id LIKE :p"),
                                      {"p": EVENT_ID_PREFIX + "%"}).scalar()
    finally:
        engine.dispose()


def test_labels_show_as_feedback_on_their_records_and_resync_replaces(recorded):
    url, session, (first, second), store = recorded
    label(store, first, "answer", PARTLY_RIGHT)
    label(store, first, "groundedness", 1)
    label(store, first, "context_relevance", 0, comment="context 1")
    label(store, first, "context_relevance", 1, comment="context 2")  # the record's best context: relevant
    wrong = label(store, second, "answer", 0)
    label(store, "a-rag-serve-answer", "answer", 1)  # no TruLens record: nothing to show it on

    synced = sync_label_feedback(store, url)
    assert (synced.written, synced.records, synced.not_recorded) == (4, 2, ["a-rag-serve-answer"])
    expected = {first: {"label: correctness": PARTLY_RIGHT, "label: groundedness": 1.0,
                        "label: context relevance": 1.0},
                second: {"label: correctness": 0.0}}
    assert label_columns(session, [first, second]) == expected
    board = session.get_leaderboard()  # the dashboard's leaderboard: the mean per version
    assert board["label: correctness"].tolist() == [pytest.approx(0.25)]
    # Each label span carries who said what.
    records, _ = session.get_records_and_feedback(record_ids=[first])
    calls = records.iloc[0]["label: correctness_calls"]
    assert any("partly right by ann" in str((c.get("meta") or {}).get("explanation")) for c in calls)

    assert sync_label_feedback(store, url).written == 4 and label_events(url) == 8  # again: nothing doubles
    assert label_columns(session, [first, second]) == expected

    store.delete([wrong])  # undone: gone from the dashboard
    label(store, first, "answer", 1, source="rag label")  # a second opinion: the best of them shows
    sync_label_feedback(store, url)
    expected = {first: {**expected[first], "label: correctness": 1.0}, second: {}}
    assert label_columns(session, [first, second]) == expected and label_events(url) == 6


def test_our_stored_rows_and_leaderboard_ignore_label_feedback(recorded):
    from rag.evaluation.trulens.recording import stored_rows

    url, _, (first, _), store = recorded
    before = stored_rows(url)
    label(store, first, "groundedness", 0)
    label(store, first, "answer", 1)
    sync_label_feedback(store, url)
    after = stored_rows(url)
    assert not [c for c in after.columns if "label" in str(c)]
    assert list(after.columns) == list(before.columns)
    assert after.drop(columns=["ts"]).equals(before.drop(columns=["ts"]))
