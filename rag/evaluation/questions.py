"""Evaluation question sets: plain text (one question a line) or JSONL with references.

Plain text: one question per line; blank lines and lines starting with ``#`` are ignored.

JSONL: one object per line (blank and ``#`` lines ignored), for example::

    {"question": "...", "reference_answer": "...", "evidence": [{"file": "handbook.pdf", "page": 2}]}

``key_facts`` (optional) lists the facts a right answer must state (``["10 working days"]``);
without it they are taken from the reference answer (see :mod:`rag.evaluation.key_facts`).
``query`` is accepted for ``question`` and ``answer`` for ``reference_answer``. ``evidence``
items are ``{"file", "page"}`` (``page`` 1-based; optional ``page_end`` for a range; no page
means "anywhere in the file") or gold passages: a string or ``{"text": ...}``.
A file is read as JSONL when its suffix is ``.jsonl``/``.json`` or its first content line starts with ``{``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import InputError

QUESTION_KEYS = ("question", "query")
REFERENCE_KEYS = ("reference_answer", "answer")


@dataclass
class Question:
    question: str
    reference_answer: str | None = None
    # {"file": str, "page": int | None, "page_end": int | None} or {"text": str} (a gold passage)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    # The facts a right answer must state, e.g. ["10 working days"] (see rag.evaluation.key_facts);
    # empty: taken from the reference answer.
    key_facts: list[str] = field(default_factory=list)

    @property
    def has_reference(self) -> bool:
        return bool(self.reference_answer)

    @property
    def has_evidence(self) -> bool:
        return bool(self.evidence)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_questions(path: str | Path) -> list[Question]:
    """Read a question set; malformed input raises :class:`InputError` naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Question file {path} does not exist. Give a .txt (one question a line) or .jsonl file.")
    if not path.is_file():
        raise InputError(f"Question file {path} is not a file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    lines = text.splitlines()
    content = [(i, line.strip()) for i, line in enumerate(lines, start=1)
               if line.strip() and not line.strip().startswith("#")]
    if not content:
        raise InputError(f"{path}: no questions found (the file is empty or only has comments).")
    is_jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson") or content[0][1].startswith("{")
    questions = [(_parse_json_line if is_jsonl else _parse_text_line)(path, n, line) for n, line in content]
    return questions


def as_questions(items: Any) -> list[Question]:
    """Accept a path, a list of :class:`Question`, of strings, or of dicts; validate them."""
    if isinstance(items, (str, Path)):
        return load_questions(items)
    out = []
    for i, item in enumerate(items or [], start=1):
        if isinstance(item, Question):
            out.append(item)
        elif isinstance(item, str):
            out.append(_parse_text_line("<questions>", i, item.strip()))
        elif isinstance(item, dict):
            out.append(_from_object("<questions>", i, item))
        else:
            raise InputError(f"<questions> item {i}: expected a question string, dict or Question, "
                             f"got {type(item).__name__}.")
    if not out:
        raise InputError("The question set is empty: give at least one question.")
    return out


def _parse_text_line(path: Any, n: int, line: str) -> Question:
    if not line:
        raise InputError(f"{path}, line {n}: the question is empty.")
    return Question(question=line)


def _parse_json_line(path: Path, n: int, line: str) -> Question:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {n}: invalid JSON ({exc.msg} at column {exc.colno}).") from None
    return _from_object(path, n, obj)


def _from_object(path: Any, n: int, obj: Any) -> Question:
    where = f"{path}, line {n}" if not str(path).startswith("<") else f"{path} item {n}"
    if isinstance(obj, str):  # a JSON string line is a bare question
        obj = {"question": obj}
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object like {{\"question\": ...}}, got {type(obj).__name__}.")
    question = _first(obj, QUESTION_KEYS)
    if question is None:
        raise InputError(f"{where}: missing the \"question\" field (or \"query\"). Keys found: "
                         f"{', '.join(sorted(obj)) or 'none'}.")
    if not isinstance(question, str):
        raise InputError(f"{where}: \"question\" must be a string, got {type(question).__name__}.")
    if not question.strip():
        raise InputError(f"{where}: the question is empty.")
    reference = _first(obj, REFERENCE_KEYS)
    if reference is not None and not isinstance(reference, str):
        raise InputError(f"{where}: \"reference_answer\" must be a string, got {type(reference).__name__}.")
    evidence = obj.get("evidence", [])
    if evidence is None:
        evidence = []
    if isinstance(evidence, (dict, str)):
        evidence = [evidence]
    if not isinstance(evidence, list):
        raise InputError(f"{where}: \"evidence\" must be a list of {{\"file\", \"page\"}} objects or passages, "
                         f"got {type(evidence).__name__}.")
    return Question(question=question.strip(), reference_answer=(reference or "").strip() or None,
                    evidence=[_evidence(where, j, e) for j, e in enumerate(evidence, start=1)],
                    key_facts=_key_facts(where, obj.get("key_facts")))


def _key_facts(where: str, value: Any) -> list[str]:
    """The optional ``key_facts``: a list of non-empty strings (one string is a list of one)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InputError(f"{where}: \"key_facts\" must be a list of strings such as [\"10 working days\"], "
                         f"got {type(value).__name__}.")
    out = []
    for j, fact in enumerate(value, start=1):
        if not isinstance(fact, str) or not fact.strip():
            raise InputError(f"{where}: key fact {j} must be a non-empty string such as \"10 working days\", "
                             f"got {fact!r}.")
        out.append(fact.strip())
    return out


def _evidence(where: str, j: int, item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        if not item.strip():
            raise InputError(f"{where}: evidence item {j} is an empty passage.")
        return {"text": item.strip()}
    if not isinstance(item, dict):
        raise InputError(f"{where}: evidence item {j} must be an object or a passage string, "
                         f"got {type(item).__name__}.")
    if "text" in item and "file" not in item:
        if not isinstance(item["text"], str) or not item["text"].strip():
            raise InputError(f"{where}: evidence item {j}: \"text\" must be a non-empty string.")
        return {"text": item["text"].strip()}
    file = item.get("file")
    if not isinstance(file, str) or not file.strip():
        raise InputError(f"{where}: evidence item {j} needs a \"file\" (string) or a \"text\" passage.")
    out: dict[str, Any] = {"file": file.strip(), "page": None, "page_end": None}
    for key in ("page", "page_end"):
        value = item.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{where}: evidence item {j}: \"{key}\" must be a positive integer "
                             f"(1-based PDF page), got {value!r}.")
        out[key] = value
    if out["page_end"] is not None and (out["page"] is None or out["page_end"] < out["page"]):
        raise InputError(f"{where}: evidence item {j}: \"page_end\" needs a \"page\" not after it.")
    return out


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj:
            return obj[key]
    return None
