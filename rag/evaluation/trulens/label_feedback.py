"""Labels as TruLens feedback results, so the dashboard shows them next to the judges' scores.

TruLens 2.x records in OpenTelemetry mode: a feedback result is an ``eval_root`` span in the events
table, tied to its record and app version (``TruSession.add_feedback`` refuses to run in that
mode). :func:`replace_label_feedback` writes one such span per labelled record and metric, named
``label: <metric>`` (:func:`feedback_name`), with an ``eval`` span under it that says who labelled;
the Leaderboard page then averages it per version and the Records page shows it per record.

Every span written here has an event id starting with :data:`EVENT_ID_PREFIX`. A sync deletes them
all and writes the current labels in one transaction: syncing twice writes nothing twice, a
changed label replaces the old value, and an undone label disappears.

Our own tables read TruLens feedback by the judges' names, never these (``recording.stored_rows``
skips them): the labels' own table stays the one source of the agreement measures.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

LABEL_FEEDBACK_PREFIX = "label: "
EVENT_ID_PREFIX = "rag-label-"
RECORDS_TABLE = "trulens_events"  # open_session keeps TruLens' default table prefix


def feedback_name(metric: str) -> str:
    """The dashboard column of a label metric: ``label: context relevance``."""
    return LABEL_FEEDBACK_PREFIX + metric.replace("_", " ")


def is_label_feedback(name: Any) -> bool:
    return str(name).startswith(LABEL_FEEDBACK_PREFIX)


@dataclass(frozen=True)
class LabelFeedback:
    """The label of one metric on one TruLens record, as the dashboard shows it."""

    record_id: str
    metric: str  # correctness, groundedness, context_relevance, answer_relevance
    score: float
    explanation: str = ""


@dataclass
class LabelSync:
    """What a sync wrote: feedback results, on how many records, and the labelled answers that are
    no record of this database (rag serve's answers, labels imported from elsewhere)."""

    written: int
    records: int
    not_recorded: list[str] = field(default_factory=list)


def replace_label_feedback(config_or_url: Any, feedback: Sequence[LabelFeedback]) -> LabelSync:
    """Make ``feedback`` the label feedback of the TruLens database, replacing whatever a previous
    sync wrote. ``feedback`` must hold every label to show: what is not in it is removed."""
    import sqlalchemy as sa

    from rag.evaluation.labels import has_table
    from rag.evaluation.trulens.session import database_url, open_session

    labelled = sorted({f.record_id for f in feedback})
    if not has_table(database_url(config_or_url), RECORDS_TABLE):
        # Nothing recorded here yet (labels of rag serve's answers, or imported ones): nothing to show
        # them on, and TruLens would refuse to create its tables beside ours.
        return LabelSync(written=0, records=0, not_recorded=labelled)
    session = open_session(config_or_url)
    db = session.connector.db
    roots = _record_roots(session, labelled)
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # TruLens keeps naive UTC times
    events = [event for f in feedback if f.record_id in roots for event in _spans(f, roots[f.record_id], now)]
    with db.session.begin() as transaction:
        transaction.execute(sa.delete(db.orm.Event).where(db.orm.Event.event_id.like(EVENT_ID_PREFIX + "%")))
        transaction.add_all([db.orm.Event.parse(event, redact_keys=db.redact_keys) for event in events])
    shown = {f.record_id for f in feedback if f.record_id in roots}
    return LabelSync(written=len(events) // 2, records=len(shown), not_recorded=sorted(set(labelled) - shown))


def _record_roots(session: Any, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each record's root span (``record_attributes``, ``resource_attributes``): which app version it is."""
    from trulens.otel.semconv.trace import SpanAttributes

    if not record_ids:
        return {}
    events = session.connector.get_events(record_ids=record_ids)
    roots = {}
    for row in events.itertuples():
        attributes, resource = _mapping(row.record_attributes), _mapping(row.resource_attributes)
        if attributes.get(SpanAttributes.SPAN_TYPE) == SpanAttributes.SpanType.RECORD_ROOT.value:
            roots[attributes[SpanAttributes.RECORD_ID]] = {"record_attributes": attributes, "resource_attributes": resource}
    return roots


def _mapping(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _spans(feedback: LabelFeedback, root: dict[str, Any], now: datetime) -> list[Any]:
    """The ``eval_root`` span that carries the score, and one ``eval`` span under it with who labelled.
    Their ids come from the record and metric: one pair per label, whichever sync wrote it."""
    from trulens.core.schema.event import Event, EventRecordType
    from trulens.otel.semconv.trace import ResourceAttributes, SpanAttributes

    digest = hashlib.sha256(f"{feedback.record_id}\0{feedback.metric}".encode()).hexdigest()
    trace_id, root_id, eval_id = (str(int(digest[a:b], 16)) for a, b in ((0, 32), (32, 47), (47, 62)))
    name = feedback_name(feedback.metric)
    app = {key: root["record_attributes"].get(key) for key in (
        ResourceAttributes.APP_NAME, ResourceAttributes.APP_VERSION, ResourceAttributes.APP_ID)}
    common = {**app, SpanAttributes.RECORD_ID: feedback.record_id, SpanAttributes.EVAL.TARGET_RECORD_ID:
              feedback.record_id, SpanAttributes.EVAL.EVAL_ROOT_ID: root_id, SpanAttributes.EVAL.METRIC_NAME: name,
              SpanAttributes.EVAL.EXPLANATION: feedback.explanation}
    scored = {
        root_id: {SpanAttributes.SPAN_TYPE: SpanAttributes.SpanType.EVAL_ROOT.value, **common,
                  SpanAttributes.EVAL_ROOT.METRIC_NAME: name, SpanAttributes.EVAL_ROOT.HIGHER_IS_BETTER: True,
                  SpanAttributes.EVAL_ROOT.SCORE: float(feedback.score)},
        eval_id: {SpanAttributes.SPAN_TYPE: SpanAttributes.SpanType.EVAL.value, **common,
                  SpanAttributes.EVAL.SCORE: float(feedback.score), SpanAttributes.CALL.RETURN: float(feedback.score),
                  SpanAttributes.CALL.FUNCTION: name},
    }
    return [Event(event_id=EVENT_ID_PREFIX + span_id, record_type=EventRecordType.SPAN,
                  record={"name": "rag label" if span_id == root_id else "label", "kind": 1, "status": "STATUS_CODE_UNSET",
                          "parent_span_id": "" if span_id == root_id else root_id},
                  record_attributes=attributes, resource_attributes=root["resource_attributes"],
                  start_timestamp=now, timestamp=now,
                  trace={"trace_id": trace_id, "parent_id": "" if span_id == root_id else root_id, "span_id": span_id})
            for span_id, attributes in scored.items()]
