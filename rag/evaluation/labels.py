"""Human labels on answers, kept in the evaluation database beside the TruLens records.

    store = LabelStore(config.resolved_database_url)
    store.add(Label(metric="answer", value=1, question="...", answer="...", source="feedback"))
    store.labels(metric="answer")          # oldest first

One small table of our own (``rag_labels``), made with SQLAlchemy on first use: TruLens's tables are
never touched here (the dashboard's copy of the labels is :mod:`rag.evaluation.trulens.label_feedback`'s).
``rag serve`` writes a user's thumbs up/down here (metric ``answer``); a labelling command
(``rag label``, :mod:`rag.evaluation.labeling`) writes per-metric labels (``answer`` correctness,
``groundedness``, ``context_relevance`` of one context, ``answer_relevance``) to measure the
judges' agreement with people; its labels keep the run's record id and version (``retriever``).

A value is 1 (good / grounded / relevant), 0, or, for an answer only, 0.5: partly right
(:data:`PARTLY_RIGHT`). Labels stored before partly had a value of its own (0 with the comment
"partly") are read as 0.5; a table made when values were whole numbers is widened to a float
column on PostgreSQL when first opened (SQLite keeps 0.5 in it as it is).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rag.errors import InputError

TABLE = "rag_labels"
METRICS = ("answer", "groundedness", "context_relevance", "answer_relevance")
PARTLY_RIGHT = 0.5  # an answer label "partly right": neither class of the yes/no agreement measures
LEGACY_PARTLY_COMMENT = "partly"  # how `rag label` marked partly before: value 0 with this comment
VALUES = {metric: (0, 1) for metric in METRICS} | {"answer": (0, PARTLY_RIGHT, 1)}


@dataclass
class Label:
    """One person's verdict on one answer: ``value`` 1 (good / grounded / relevant), 0, or
    :data:`PARTLY_RIGHT` (an answer only)."""

    metric: str
    value: float
    question: str
    answer: str = ""
    contexts: list[str] = field(default_factory=list)
    retriever: str | None = None  # the version (or retriever) that answered
    record_id: str | None = None  # the answer's id where it came from (a completion id, a TruLens record)
    source: str = "feedback"  # who wrote it: feedback (rag serve), or a labelling tool
    annotator: str | None = None
    comment: str | None = None
    created: str | None = None  # ISO time, UTC; set when stored
    id: int | None = None

    def check(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"unknown label metric {self.metric!r}: use one of {', '.join(METRICS)}.")
        if isinstance(self.value, bool) or self.value not in VALUES[self.metric]:
            allowed = " or ".join(str(v) for v in VALUES[self.metric])
            raise InputError(f"{self.metric} label value {self.value!r}: use {allowed} (1 good, 0 bad"
                             f"{f', {PARTLY_RIGHT} partly right' if PARTLY_RIGHT in VALUES[self.metric] else ''}).")
        if not self.question.strip():
            raise InputError("a label needs the question it is about.")


class LabelStore:
    """The labels table of one database (any SQLAlchemy URL); safe to share between threads."""

    def __init__(self, database_url: str):
        import sqlalchemy as sa

        self._engine = sa.create_engine(database_url)
        meta = sa.MetaData()
        self._table = sa.Table(
            TABLE, meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("created", sa.String(40), nullable=False),
            sa.Column("source", sa.String(40), nullable=False),
            sa.Column("metric", sa.String(40), nullable=False, index=True),
            sa.Column("value", sa.Float, nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("contexts", sa.Text, nullable=False),  # a JSON list of strings
            sa.Column("retriever", sa.String(400)),
            sa.Column("record_id", sa.String(100), index=True),
            sa.Column("annotator", sa.String(100)),
            sa.Column("comment", sa.Text),
        )
        meta.create_all(self._engine, checkfirst=True)
        _widen_whole_number_values(self._engine)
        self._write = threading.Lock()  # SQLite takes one writer at a time: queue ours here, not in retries

    def add(self, label: Label) -> int:
        """Store ``label`` (checked first); returns its id. ``created`` is kept when set (an import)."""
        label.check()
        created = label.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = {"created": created, "source": label.source, "metric": label.metric, "value": float(label.value),
               "question": label.question, "answer": label.answer,
               "contexts": json.dumps(list(label.contexts), ensure_ascii=False), "retriever": label.retriever,
               "record_id": label.record_id, "annotator": label.annotator, "comment": label.comment}
        with self._write, self._engine.begin() as connection:
            result = connection.execute(self._table.insert().values(**row))
            label.id, label.created = int(result.inserted_primary_key[0]), created
        return label.id

    def labels(self, metric: str | None = None, source: str | None = None,
               record_id: str | None = None) -> list[Label]:
        """The stored labels, oldest first, optionally of one metric, source or answer."""
        query = self._table.select().order_by(self._table.c.id)
        for column, wanted in (("metric", metric), ("source", source), ("record_id", record_id)):
            if wanted is not None:
                query = query.where(self._table.c[column] == wanted)
        with self._engine.connect() as connection:
            return [_label(row._mapping) for row in connection.execute(query)]

    def delete(self, ids: list[int]) -> None:
        """Remove the labels ``ids`` (an undo)."""
        if ids:
            with self._write, self._engine.begin() as connection:
                connection.execute(self._table.delete().where(self._table.c.id.in_(ids)))

    def close(self) -> None:
        self._engine.dispose()


def has_table(database_url: str, table: str = TABLE) -> bool:
    """Whether the database has ``table`` (the labels' by default), without making it as
    :class:`LabelStore` does."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        return sa.inspect(engine).has_table(table)
    finally:
        engine.dispose()


def _widen_whole_number_values(engine: Any) -> None:
    """A table made when values were whole numbers gets a float ``value`` column, so 0.5 is not
    rounded on the way in. SQLite stores 0.5 in an integer column as it is: nothing to do there."""
    import sqlalchemy as sa

    if engine.dialect.name == "sqlite":
        return
    column = next(c for c in sa.inspect(engine).get_columns(TABLE) if c["name"] == "value")
    if isinstance(column["type"], sa.Integer):
        with engine.begin() as connection:
            connection.execute(sa.text(f"ALTER TABLE {TABLE} ALTER COLUMN value TYPE DOUBLE PRECISION"))


def _label(row: Any) -> Label:
    values = dict(row)
    values["contexts"] = json.loads(values["contexts"] or "[]")
    value = float(values["value"])
    values["value"] = int(value) if value.is_integer() else value
    # Before partly had its own value, `rag label` stored it as 0 with a comment (rag serve's
    # feedback comments are free text: those are left as they are).
    if (values["metric"] == "answer" and values["value"] == 0 and values["source"] != "feedback"
            and values["comment"] == LEGACY_PARTLY_COMMENT):
        values["value"], values["comment"] = PARTLY_RIGHT, None
    return Label(**values)
