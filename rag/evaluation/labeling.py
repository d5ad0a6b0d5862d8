"""``rag label``: a person labels the rows of a stored run, and the judges are measured on the labels.

A *run* is the ``rows.json`` an evaluation writes (``storage/results/<time>/``; the newest by
default). :class:`LabelingSession` walks its rows one key at a time, with no terminal of its own, so
a test (or another front end) drives it like a person:

- the answer: ``c`` correct, ``w`` wrong, ``p`` partly right (stored as 0.5, :data:`PARTLY_RIGHT`);
- then its grounding: ``g`` grounded in the contexts, ``u`` not;
- then, optionally, each context in turn: ``r`` relevant, ``i`` irrelevant, ``n`` no more;
- any time: ``s`` skip the row, ``z`` undo the last key (back into the previous row when at the
  start of one), ``q`` quit.

A row's labels are stored together when the row is finished, so quitting half-way through a row
stores nothing of it; rows that already have labels are passed over, so a new session resumes
where the last one stopped. :func:`label_agreement` compares the labels with the judges' scores.
"""

from __future__ import annotations

import getpass
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag.errors import InputError
from rag.evaluation.labels import METRICS, PARTLY_RIGHT, VALUES, Label, LabelStore

SOURCE = "rag label"
ANSWER_KEYS = {"c": 1, "w": 0, "p": PARTLY_RIGHT}
GROUNDED_KEYS = {"g": 1, "u": 0}
CONTEXT_KEYS = {"r": 1, "i": 0}
HELP = ("c correct / w wrong / p partly; then g grounded / u not; then per context r relevant / i irrelevant / "
        "n no more; s skip, z undo, q quit")
PASS_AT = 0.5  # a judge score (or key-fact correctness) at or above this says yes (rag.evaluation.verdict)


def default_annotator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container without passwd entry)
        return "unknown"


# ---------------------------------------------------------------- the run

def run_rows(storage_dir: str | Path, run: str | Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """The rows of a stored run: ``run`` (a results folder or its rows.json), else the newest under
    ``<storage_dir>/results``."""
    if run is None:
        found = sorted(Path(storage_dir).glob("results/*/rows.json"))
        if not found:
            raise InputError(f"No stored run in {Path(storage_dir) / 'results'}: run `rag eval` first "
                             "(or give --run FOLDER).")
        path = found[-1]  # folders are named by time: the last is the newest
    else:
        path = Path(run) / "rows.json" if Path(run).is_dir() else Path(run)
        if not path.is_file():
            raise InputError(f"--run {run}: no rows.json there; give a folder `rag eval` wrote (storage/results/...).")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a run's rows.json ({exc}); give a folder `rag eval` wrote.") from None
    return path, [r for r in rows if not r.get("error")]  # a failed answer has nothing to label


def select_rows(rows: list[dict[str, Any]], version: str | None = None, disagree: bool = False,
                sample: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The rows to label: of one version (its full name or retriever), only where a judge disagrees
    with key-fact correctness, and/or ``sample`` of them drawn at random with ``seed``."""
    if version is not None:
        rows = [r for r in rows if version in (r.get("version"), r.get("retriever"))]
        if not rows:
            raise InputError(f"--version {version!r}: no row of that version in the run; `rag leaderboard` lists them.")
    if disagree:
        import pandas as pd

        from rag.evaluation.verdict import agreement

        flagged = {(f.version, f.question) for f in agreement(pd.DataFrame(rows)).flags}
        rows = [r for r in rows if (r.get("version"), r.get("question")) in flagged]
    if sample is not None:
        if sample < 1:
            raise InputError(f"--sample {sample}: give a positive number of rows.")
        rows = random.Random(seed).sample(rows, min(sample, len(rows)))
    return rows


def row_key(record_id: Any, question: str, answer: str) -> tuple[str, ...]:
    """What ties a label to an answer: its TruLens record id, else the question and answer text."""
    return ("record", str(record_id)) if record_id else ("text", question, answer)


# ---------------------------------------------------------------- the session

@dataclass
class _Pending:
    """The labels of the row being labelled, not stored until the row is finished."""

    answer: float | None = None
    grounded: int | None = None
    contexts: list[int] = field(default_factory=list)


class LabelingSession:
    """Label ``rows`` one key at a time (:meth:`press`); labels go to ``store`` as each row finishes."""

    def __init__(self, rows: Sequence[dict[str, Any]], store: LabelStore, who: str | None = None):
        self.rows, self.store, self.who = list(rows), store, who or default_annotator()
        labelled = {row_key(l.record_id, l.question, l.answer) for l in store.labels(source=SOURCE)}
        # Resume: rows labelled before (by anyone) are not shown again.
        self._todo = [i for i, r in enumerate(self.rows) if self._key(r) not in labelled]
        self.already_labelled = len(self.rows) - len(self._todo)
        self._at = 0  # position in _todo
        self._pending = _Pending()
        self._history: list[tuple[int, _Pending, list[int]]] = []  # finished rows: (position, labels, stored ids)
        self.labelled = self.skipped = 0
        self.changed = False  # labels stored or taken back in this session (the dashboard's copy is behind)
        self.quit = False

    @staticmethod
    def _key(row: dict[str, Any]) -> tuple[str, ...]:
        return row_key(row.get("record_id"), str(row.get("question") or ""), str(row.get("answer") or ""))

    @property
    def done(self) -> bool:
        return self.quit or self._at >= len(self._todo)

    @property
    def row(self) -> dict[str, Any] | None:
        return None if self.done else self.rows[self._todo[self._at]]

    @property
    def position(self) -> tuple[int, int]:
        """(this row's number, rows to label in this session)."""
        return self._at + 1, len(self._todo)

    @property
    def stage(self) -> str:
        """What the next key answers: ``answer``, ``grounded`` or ``context N`` (1-based)."""
        if self._pending.answer is None:
            return "answer"
        if self._pending.grounded is None:
            return "grounded"
        return f"context {len(self._pending.contexts) + 1}"

    def prompt(self) -> str:
        stage = self.stage
        if stage == "answer":
            return "answer: c correct, w wrong, p partly (s skip, z undo, q quit)"
        if stage == "grounded":
            return "grounded in the contexts? g yes, u no (z undo)"
        return f"{stage} relevant? r yes, i no, n no more contexts (z undo)"

    def press(self, key: str) -> str:
        """Apply one key; returns what happened, in a few words."""
        key = key.strip().lower()[:1]
        if self.done:
            return "nothing left to label"
        if key == "q":
            self.quit = True
            return "quit: finished rows are stored; run again to resume"
        if key == "z":
            return self._undo()
        if key == "s":
            self._history.append((self._at, _Pending(), []))
            self._pending = _Pending()
            self._at += 1
            self.skipped += 1
            return "skipped"
        pending, stage = self._pending, self.stage
        if stage == "answer" and key in ANSWER_KEYS:
            pending.answer = ANSWER_KEYS[key]
            return {"c": "correct", "w": "wrong", "p": "partly right"}[key]
        if stage == "grounded" and key in GROUNDED_KEYS:
            pending.grounded = GROUNDED_KEYS[key]
            return self._finish_if_complete("grounded" if pending.grounded else "not grounded")
        if stage.startswith("context") and key in CONTEXT_KEYS:
            pending.contexts.append(CONTEXT_KEYS[key])
            return self._finish_if_complete("relevant" if CONTEXT_KEYS[key] else "irrelevant")
        if stage.startswith("context") and key == "n":
            return self._finish()
        return f"key {key or '(none)'!r} does nothing here: {self.prompt()}"

    def _finish_if_complete(self, said: str) -> str:
        if len(self._pending.contexts) >= len(self.row.get("contexts") or []):
            return f"{said}; {self._finish()}"
        return said

    def _finish(self) -> str:
        ids = [self.store.add(label) for label in self._labels(self.row, self._pending)]
        self.changed = True
        self._history.append((self._at, self._pending, ids))
        self._pending = _Pending()
        self._at += 1
        self.labelled += 1
        return f"stored {len(ids)} label(s)"

    def _undo(self) -> str:
        pending = self._pending
        if pending.contexts:
            pending.contexts.pop()
        elif pending.grounded is not None:
            pending.grounded = None
        elif pending.answer is not None:
            pending.answer = None
        elif self._history:  # at a row's start: reopen the previous row with its labels, last one taken back
            self._at, previous, ids = self._history.pop()
            self.store.delete(ids)
            if ids:
                self.changed = True
                self.labelled -= 1
                self._pending = previous
                return self._undo()
            self.skipped -= 1
            return "back to the skipped row"
        else:
            return "nothing to undo"
        return f"undone; {self.prompt()}"

    def _labels(self, row: dict[str, Any], pending: _Pending) -> list[Label]:
        question, answer = str(row.get("question") or ""), str(row.get("answer") or "")
        contexts = [str(c) for c in row.get("contexts") or []]
        common = {"question": question, "answer": answer, "retriever": row.get("version") or row.get("retriever"),
                  "record_id": row.get("record_id"), "source": SOURCE, "annotator": self.who}
        labels = [Label(metric="answer", value=pending.answer, contexts=contexts, **common),
                  Label(metric="groundedness", value=pending.grounded, contexts=contexts, **common)]
        labels += [Label(metric="context_relevance", value=value, contexts=[contexts[i]], comment=f"context {i + 1}",
                         **common) for i, value in enumerate(pending.contexts)]
        return labels


# ---------------------------------------------------------------- JSONL in `rag judge` format

def label_line(label: Label) -> dict[str, Any]:
    """One label as a `rag judge` line of its metric, with who, when and the run's ids."""
    if label.metric == "context_relevance":
        fields: dict[str, Any] = {"question": label.question, "context": (label.contexts or [""])[0],
                                  "answer": label.answer}  # the answer it was shown with: ties it to its row
    elif label.metric == "groundedness":
        fields = {"contexts": label.contexts, "answer": label.answer, "question": label.question}
    else:
        fields = {"question": label.question, "answer": label.answer, "contexts": label.contexts}
    line = {"metric": label.metric, **fields, "label": label.value}
    extra = {"record_id": label.record_id, "version": label.retriever, "who": label.annotator,
             "when": label.created, "source": label.source, "comment": label.comment}
    return {**line, **{k: v for k, v in extra.items() if v is not None}}


def export_labels(store: LabelStore, path: str | Path) -> int:
    """Write every stored label to ``path`` (JSONL, oldest first); returns how many."""
    labels = store.labels()
    Path(path).write_text("".join(json.dumps(label_line(l), ensure_ascii=False) + "\n" for l in labels),
                          encoding="utf-8")
    return len(labels)


def import_labels(store: LabelStore, path: str | Path, who: str | None = None) -> tuple[int, int]:
    """Store the labels of a JSONL file (as :func:`export_labels` writes); a label already stored
    is not added twice. Every line is checked before any is stored. Returns (added, already there)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--import {path}: no such file; give a JSONL file of labels (e.g. from --export).")
    labels = []
    for n, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if text.strip() and not text.lstrip().startswith("#"):
            labels.append(_label_from_line(text, f"{path}, line {n}", who))
    seen = {_identity(l) for l in store.labels()}
    added = 0
    for label in labels:
        if _identity(label) not in seen:
            store.add(label)
            seen.add(_identity(label))
            added += 1
    return added, len(labels) - added


def _label_from_line(text: str, where: str, who: str | None) -> Label:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}.")
    metric = obj.get("metric")
    if metric not in METRICS:
        raise InputError(f"{where}: \"metric\" must be one of {', '.join(METRICS)}, got {metric!r}.")
    contexts = obj.get("contexts", [obj["context"]] if isinstance(obj.get("context"), str) else [])
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise InputError(f"{where}: \"contexts\" must be a list of strings.")
    label = obj.get("label")
    if label == 0 and obj.get("partly") and metric == "answer":  # an export from before partly had its own value
        label = PARTLY_RIGHT
    if isinstance(label, bool) or label not in VALUES[metric]:
        raise InputError(f"{where}: \"label\" of {metric} must be {' or '.join(map(str, VALUES[metric]))}, "
                         f"got {label!r}.")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{where}: needs \"question\" (a non-empty string).")
    return Label(metric=metric, value=label, question=question, answer=str(obj.get("answer") or ""),
                 contexts=contexts, retriever=obj.get("version"), record_id=obj.get("record_id"),
                 source=str(obj.get("source") or "import"), annotator=obj.get("who") or who,
                 comment=obj.get("comment"), created=obj.get("when"))


def _identity(label: Label) -> tuple[Any, ...]:
    return (label.metric, label.value, label.question, label.answer, tuple(label.contexts), label.record_id,
            label.annotator)


# ---------------------------------------------------------------- agreement with the labels

# The judged column of a row, and the label metric it is measured against. Key-fact correctness
# is measured like a judge: it too decides "right" at 0.5.
MEASURED = (("groundedness", "groundedness"), ("context_relevance", "context_relevance"),
            ("answer_relevance", "answer_relevance"), ("correctness", "answer"))


def row_labels(labels: Iterable[Label]) -> dict[tuple[str, ...], dict[str, float]]:
    """Per answer (:func:`row_key`), the label of each metric; several labels of one metric (two
    people, or several contexts) count as the best of them: yes when any says yes (a row's context
    relevance is its best context's, as the judge's is), else partly when any says partly."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for label in labels:
        for key in {row_key(label.record_id, label.question, label.answer), row_key(None, label.question, label.answer)}:
            values = out.setdefault(key, {})
            values[label.metric] = max(values.get(label.metric, 0), label.value)
    return out


def _labels_of(row: Any, by_row: dict[tuple[str, ...], dict[str, float]]) -> dict[str, float]:
    question, answer = str(row.get("question") or ""), row.get("answer")
    found = by_row.get(row_key(row.get("record_id"), question, "")) if row.get("record_id") else None
    if found is None and isinstance(answer, str):
        found = by_row.get(row_key(None, question, answer))
    return found or {}


def label_agreement(rows: Any, labels: Sequence[Label]) -> Any:
    """One row per judge and metric with labelled rows: n, balanced accuracy, AUC and Cohen's kappa
    (with its 95% bootstrap interval) of the judge's decision (score >= 0.5) against the labels. An
    empty DataFrame without labels on these rows.

    The measures are of a yes/no decision, and a partly right answer is neither: those rows are
    left out of them (``n``) and counted apart (``partly``)."""
    import pandas as pd

    from rag.evaluation.judge_file import agreement

    columns = ["judge", "metric", "n", "partly", "balanced_accuracy", "auc", "kappa", "kappa_lo", "kappa_hi"]
    by_row = row_labels(labels)
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    rows = rows if rows is not None else pd.DataFrame()
    numeric = {column: pd.to_numeric(rows[column], errors="coerce") for column, _ in MEASURED if column in rows}
    for index, row in rows.iterrows():
        given = _labels_of(row, by_row)
        for column, metric in MEASURED:
            score = numeric[column][index] if column in numeric else float("nan")
            if metric in given and not np.isnan(score):
                judge = "key facts" if column == "correctness" else str(row.get("judge") or "?")
                pairs.setdefault((judge, column), []).append((score, given[metric]))
    out = []
    for (judge, metric), scored in sorted(pairs.items()):
        decided = [(s, int(l)) for s, l in scored if l != PARTLY_RIGHT]
        measured = agreement([s for s, _ in decided], [l for _, l in decided], PASS_AT) or {}
        out.append({"judge": judge, "metric": metric, "n": len(decided), "partly": len(scored) - len(decided),
                    **{c: measured.get(c) for c in columns[4:]}})
    return pd.DataFrame(out, columns=columns)


def labelled_correctness(rows: Any, labels: Sequence[Label]) -> dict[str, tuple[float, int]]:
    """Per version: the mean of its answer labels (correct 1, partly right 0.5, wrong 0), and how
    many are labelled."""
    by_row = row_labels(labels)
    counts: dict[str, list[float]] = {}
    for _, row in (rows.iterrows() if rows is not None and not rows.empty else []):
        given = _labels_of(row, by_row)
        if "answer" in given:
            counts.setdefault(str(row.get("version")), []).append(given["answer"])
    return {version: (float(np.mean(values)), len(values)) for version, values in counts.items()}


def with_labelled_correctness(board: Any, rows: Any, labels: Sequence[Label]) -> Any:
    """``board`` with ``labelled_correct`` and ``labelled_correct_n`` per version (None where unlabelled)."""
    shares = labelled_correctness(rows, labels)
    board = board.copy()
    board["labelled_correct"] = board["version"].map(lambda v: shares.get(v, (None, 0))[0])
    board["labelled_correct_n"] = board["version"].map(lambda v: shares.get(v, (None, 0))[1])
    return board


# ---------------------------------------------------------------- the labels in the TruLens dashboard

SAID = {"answer": {1: "correct", PARTLY_RIGHT: "partly right", 0: "wrong"}}  # other metrics: yes / no


def label_feedback(labels: Iterable[Label]) -> list[Any]:
    """The labels on TruLens records, one feedback result per record and metric (named as the
    agreement table names it: ``answer`` labels measure correctness), valued as
    :func:`row_labels` values them; the explanation says who said what, and when."""
    from rag.evaluation.trulens.label_feedback import LabelFeedback

    metric_of = {label_metric: column for column, label_metric in MEASURED}
    grouped: dict[tuple[str, str], list[Label]] = {}
    for label in labels:
        if label.record_id:
            grouped.setdefault((str(label.record_id), metric_of[label.metric]), []).append(label)
    out = []
    for (record_id, metric), given in grouped.items():
        said = [f"{SAID.get(l.metric, {1: 'yes', 0: 'no'})[l.value]}"
                f"{f' ({l.comment})' if l.comment else ''} by {l.annotator or l.source}, {(l.created or '')[:10]}"
                for l in given]
        out.append(LabelFeedback(record_id=record_id, metric=metric, score=float(max(l.value for l in given)),
                                 explanation="your label: " + "; ".join(said)))
    return out


def sync_label_feedback(store: LabelStore, database_url: str) -> Any:
    """Show ``store``'s labels in the TruLens dashboard of ``database_url``, replacing what an earlier
    sync wrote (:func:`rag.evaluation.trulens.label_feedback.replace_label_feedback`)."""
    from rag.evaluation.trulens.label_feedback import replace_label_feedback

    return replace_label_feedback(database_url, label_feedback(store.labels()))


LABELS_RANKED_BY = "labelled correctness (your labels)"


def rank_by_labels(board: Any) -> Any:
    """``board`` ranked by labelled correctness, unlabelled versions last in their former order.
    ``vs_best`` compared with the former best: it is left out."""
    if "labelled_correct" not in board or board["labelled_correct"].isna().all():
        raise InputError("No labelled answers in the stored runs to rank by: label some with `rag label` first.")
    board = board.sort_values("labelled_correct", ascending=False, na_position="last", kind="mergesort")
    board = board.drop(columns=["vs_best"], errors="ignore").reset_index(drop=True)
    board["rank"] = range(1, len(board) + 1)
    board.attrs["ranked_by"] = LABELS_RANKED_BY
    return board
