"""Labels from `rag label` in both databases the records live in: SQLite and a real PostgreSQL server
(throw-away, on 127.0.0.1). Stored, undone, exported and imported across them without loss."""

from __future__ import annotations

import json

import pytest
from pg_server import running_server

from rag.evaluation.labeling import LabelingSession, export_labels, import_labels, label_agreement
from rag.evaluation.labels import LabelStore

BACKENDS = ("sqlite", "postgresql")
ROWS = [{"version": "basic llm=m judge=lexical", "retriever": "basic", "judge": "lexical", "question": f"q{n}?",
         "answer": f"a{n} [1]", "contexts": [f"c{n}.1", f"c{n}.2"], "record_id": f"r{n}", "groundedness": g}
        for n, g in enumerate([0.9, 0.2, 0.7, 0.1])]


@pytest.fixture(scope="module")
def pg():
    yield from running_server(password="labels-Secr3t")


_databases = iter(range(1_000_000))


def url_of(backend: str, request, tmp_path) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("pg").create_database(f"labels{next(_databases)}")
    return f"sqlite:///{tmp_path / f'labels{next(_databases)}.sqlite'}"


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    labels = LabelStore(url_of(request.param, request, tmp_path))
    yield labels
    labels.close()


def test_session_labels_undo_and_resume_in_the_database(store):
    session = LabelingSession(ROWS, store, who="ann")
    # z at row 3's start reopens row 2 and takes back its last label (context 1: i); n then ends it without.
    for key in "cgri" + "wuin" + "z" + "n" + "cuq":
        session.press(key)
    assert session.quit and session.labelled == 2
    values = [(l.record_id, l.metric, l.value) for l in store.labels()]
    assert values == [("r0", "answer", 1), ("r0", "groundedness", 1), ("r0", "context_relevance", 1),
                      ("r0", "context_relevance", 0), ("r1", "answer", 0), ("r1", "groundedness", 0)]
    assert all(l.annotator == "ann" and l.created and l.retriever == ROWS[0]["version"] for l in store.labels())
    resumed = LabelingSession(ROWS, store)
    assert resumed.already_labelled == 2 and resumed.row["record_id"] == "r2"


def test_export_then_import_into_the_other_backend(store, request, tmp_path):
    session = LabelingSession(ROWS, store, who="ann")
    for key in "cgrn" + "puin" + "wgn" + "cun":
        session.press(key)
    exported = tmp_path / "labels.jsonl"
    assert export_labels(store, exported) == 10
    other_backend = "sqlite" if store._engine.dialect.name == "postgresql" else "postgresql"
    other = LabelStore(url_of(other_backend, request, tmp_path))
    try:
        assert import_labels(other, exported) == (10, 0)
        assert import_labels(other, exported) == (0, 10)
        keep = lambda l: (l.metric, l.value, l.question, l.answer, l.contexts, l.record_id, l.retriever,  # noqa: E731
                          l.annotator, l.comment, l.created, l.source)
        assert [keep(l) for l in other.labels()] == [keep(l) for l in store.labels()]
        again = tmp_path / "again.jsonl"
        export_labels(other, again)
        assert [json.loads(x) for x in again.read_text().splitlines()] == \
            [json.loads(x) for x in exported.read_text().splitlines()]
        import pandas as pd

        table = label_agreement(pd.DataFrame(ROWS), other.labels()).set_index("metric")
        # the judge says yes on rows 0 and 2; labels: grounded on 0 and 2: full agreement
        assert table.loc["groundedness", "n"] == 4 and table.loc["groundedness", "balanced_accuracy"] == 1.0
        assert table.loc["groundedness", "kappa"] == 1.0
    finally:
        other.close()


def test_a_table_from_before_partly_keeps_half_values(request, tmp_path):
    """A rag_labels table made when values were whole numbers (an integer column) holding a partly
    label of that time (0, comment "partly"): both read as 0.5, and a new 0.5 is not rounded."""
    import sqlalchemy as sa

    from rag.evaluation.labels import PARTLY_RIGHT, TABLE, Label

    for backend in BACKENDS:
        url = url_of(backend, request, tmp_path)
        engine = sa.create_engine(url)
        meta = sa.MetaData()  # the table as LabelStore made it then
        old = sa.Table(TABLE, meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                       *(sa.Column(name, sa.String(100)) for name in ("created", "source", "metric")),
                       sa.Column("value", sa.Integer, nullable=False),
                       *(sa.Column(name, sa.Text) for name in ("question", "answer", "contexts")),
                       *(sa.Column(name, sa.String(100)) for name in ("retriever", "record_id", "annotator")),
                       sa.Column("comment", sa.Text))
        meta.create_all(engine)
        with engine.begin() as connection:
            connection.execute(old.insert().values(created="2026-12-01T00:00:00+00:00", source="rag label",
                                                   metric="answer", value=0, question="q?", answer="a",
                                                   contexts="[]", record_id="r0", annotator="ann", comment="partly"))
        engine.dispose()
        store = LabelStore(url)
        try:
            store.add(Label(metric="answer", value=PARTLY_RIGHT, question="q2?", record_id="r1"))
            assert [(l.record_id, l.value, l.comment) for l in store.labels()] == [
                ("r0", PARTLY_RIGHT, None), ("r1", PARTLY_RIGHT, None)], backend
        finally:
            store.close()
