"""Test sets from the user's own PDFs: questions with reference answers and file/page evidence.

    from rag.evaluation.generate_questions import generate_questions
    report = generate_questions(config, "data/", n=50)
    report.write("questions.jsonl")      # loads straight into `rag eval -q questions.jsonl`
    print(report.summary())              # kept per type, dropped per reason

How. The PDFs are read page by page and cut into passages of whole paragraphs. Passages are drawn
(seeded) for three kinds of question: ``single`` (one passage), ``multi`` (two passages from
different pages or files, the question needing both) and ``numeric`` (a passage with numbers; the
answer is a number or amount). The configured generator writes ``Question: ... / Answer: ...``.

Kept only when (otherwise dropped, and counted under the reason):
- ``unparsable``: the reply has a question ending in "?" and a non-empty answer;
- ``not answerable from its evidence``: at least ``EVIDENCE_RECALL`` of the answer's content words
  are in the passage(s);
- ``leaks the answer``: the question contains at most ``LEAK_RECALL`` of the answer's content words;
- ``refers to the passage``: "the passage" / "this text" means nothing to a retriever;
- ``no number in the answer`` (numeric) / ``does not use both passages`` (multi: question and
  answer take at least ``MULTI_WORDS`` content words from each passage that the other lacks);
- ``near duplicate``: MiniLM cosine to a kept question below ``DUPLICATE_COSINE``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rag.errors import InputError
from rag.evaluation.metrics import tokens

TYPES = ("single", "multi", "numeric")
MIX = {"single": 0.5, "multi": 0.25, "numeric": 0.25}
MIN_WORDS, MAX_WORDS = 30, 180
EVIDENCE_RECALL = 0.7
LEAK_RECALL = 0.6
DUPLICATE_COSINE = 0.9
MULTI_WORDS = 2  # content words a two-passage question must take from each passage (and not the other)
ATTEMPTS_PER_QUESTION = 3

SYSTEM = "You write exam questions about documents. Follow the format exactly."
PROMPTS = {
    "single": ("Passage:\n{a}\n\nWrite one question that this passage answers, and its short answer taken from "
               "the passage. Do not put the answer in the question.\nQuestion: <question>\nAnswer: <answer>"),
    "numeric": ("Passage:\n{a}\n\nWrite one question whose answer is a number, amount or date stated in this "
                "passage, and that answer.\nQuestion: <question>\nAnswer: <answer>"),
    "multi": ("Passage 1:\n{a}\n\nPassage 2:\n{b}\n\nWrite one question that needs facts from both passages to "
              "answer, and its short answer.\nQuestion: <question>\nAnswer: <answer>"),
}


@dataclass(frozen=True)
class Passage:
    file: str
    page: int
    text: str


@dataclass
class GenerationReport:
    questions: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one dropped reply, for the user
    attempts: int = 0

    def kept_by_type(self) -> Counter:
        return Counter(q["type"] for q in self.questions)

    def summary(self) -> str:
        kept = ", ".join(f"{t} {c}" for t, c in sorted(self.kept_by_type().items())) or "none"
        dropped = ", ".join(f"{r} {c}" for r, c in self.dropped.most_common()) or "none"
        return (f"kept {len(self.questions)} of {self.attempts} generated ({kept}); dropped: {dropped}")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in self.questions), encoding="utf-8")
        return path


# ---------------------------------------------------------------- passages

def passages(path: str | Path) -> list[Passage]:
    """Paragraph-aligned passages of MIN_WORDS..MAX_WORDS words from every readable PDF under ``path``."""
    from rag.errors import UnreadablePdfError
    from rag.ingest.pdf import find_pdfs, read_pdf

    found, _ = find_pdfs(path)
    out = []
    for file, name in found:
        try:
            pdf = read_pdf(file, name)
        except UnreadablePdfError:
            continue  # `rag ingest` reports these; a test set is made from what can be read
        bounds = [*pdf.page_starts, len(pdf.text)]
        for page, (start, end) in enumerate(zip(bounds, bounds[1:]), start=1):
            out.extend(Passage(name, page, text) for text in _pack(pdf.text[start:end]))
    if not out:
        raise InputError(f"{path}: no PDF with enough text for questions (passages of {MIN_WORDS}+ words).")
    return out


def _pack(page: str) -> list[str]:
    out, current = [], []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", page) if p.strip()):
        words = len(" ".join(current).split())
        if current and words + len(paragraph.split()) > MAX_WORDS:
            out.append(" ".join(current))
            current = []
        current.append(paragraph)
    if current:
        out.append(" ".join(current))
    return [p for p in out if len(p.split()) >= MIN_WORDS]


# ---------------------------------------------------------------- checks

def parse_reply(text: str) -> tuple[str, str] | None:
    q = re.search(r"question\s*[:：]\s*(.+?)(?:\n|answer\s*[:：]|$)", text, re.I | re.S)
    a = re.search(r"answer\s*[:：]\s*(.+)", text, re.I | re.S)
    if not q or not a:
        return None
    question = q.group(1).strip().strip("*\"' ")
    answer = a.group(1).strip().splitlines()[0].strip().strip("*\"' ")
    if not question.endswith("?") or len(question.split()) < 4 or not answer or "<" in question:
        return None
    return question, answer


def _share(words: list[str], text: str) -> float:
    wanted = set(words)
    return len(wanted & set(tokens(text))) / len(wanted) if wanted else 0.0


def check(kind: str, question: str, answer: str, evidence: list[Passage]) -> str | None:
    """Why this question is dropped, or None to keep it."""
    answer_words = tokens(answer)
    if not answer_words:
        return "unparsable"
    joined = " ".join(p.text for p in evidence)
    if _share(answer_words, joined) < EVIDENCE_RECALL:
        return "not answerable from its evidence"
    if _share(answer_words, question) > LEAK_RECALL:
        return "leaks the answer"
    if kind == "numeric" and not re.search(r"\d", answer):
        return "no number in the answer"
    if re.search(r"\b(the|this|that) (passage|text|excerpt)s?\b", f"{question} {answer}", re.I):
        return "refers to the passage"  # meaningless once the question is asked of the whole corpus
    if kind == "multi":
        a, b = (set(tokens(p.text)) for p in evidence)
        used = set(tokens(question + " " + answer))
        if len(used & (a - b)) < MULTI_WORDS or len(used & (b - a)) < MULTI_WORDS:
            return "does not use both passages"
    return None


# ---------------------------------------------------------------- generation

def generate_questions(config: Any, path: str | Path, n: int = 50, seed: int = 0, llm: Any = None,
                       embed: Callable[[list[str]], np.ndarray] | None = None,
                       progress: Callable[[int, int], None] | None = None) -> GenerationReport:
    """Up to ``n`` checked questions from the PDFs under ``path``, with the configured generator."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    if not isinstance(n, int) or n < 1:
        raise InputError(f"-n {n!r}: give how many questions to write, at least 1.")
    pool = passages(path)
    rng = random.Random(seed)
    if llm is None:
        from rag.generation import make_llm

        llm = make_llm(config)
    if embed is None:
        from rag.embedding import embed_texts

        embed = lambda texts: np.asarray(embed_texts(config, texts))  # noqa: E731
    report = GenerationReport()
    kept_vectors: list[np.ndarray] = []
    numeric_pool = [p for p in pool if len(re.findall(r"\d", p.text)) >= 2] or pool
    kinds = [k for k in TYPES for _ in range(round(MIX[k] * 100))]
    while len(report.questions) < n and report.attempts < n * ATTEMPTS_PER_QUESTION:
        kind = rng.choice(kinds)
        evidence = _draw(kind, pool, numeric_pool, rng)
        if evidence is None:
            continue
        report.attempts += 1
        prompt = PROMPTS[kind].format(a=evidence[0].text, b=evidence[-1].text)
        reply = llm.chat([ChatMessage(role=MessageRole.SYSTEM, content=SYSTEM),
                          ChatMessage(role=MessageRole.USER, content=prompt)])
        text = reply.message.content or ""
        parsed = parse_reply(text)
        reason = "unparsable" if parsed is None else check(kind, *parsed, evidence)
        if reason is None:
            vector = np.asarray(embed([parsed[0]]))[0]
            if any(float(vector @ v) >= DUPLICATE_COSINE for v in kept_vectors):
                reason = "near duplicate"
        if reason is not None:
            report.dropped[reason] += 1
            report.examples.setdefault(reason, text.strip()[:300])
        else:
            kept_vectors.append(vector)
            report.questions.append({
                "question": parsed[0], "reference_answer": parsed[1], "type": kind,
                "evidence": [{"file": p.file, "page": p.page} for p in evidence]})
        if progress:
            progress(len(report.questions), report.attempts)
    return report


def _draw(kind: str, pool: list[Passage], numeric_pool: list[Passage], rng: random.Random) -> list[Passage] | None:
    if kind == "numeric":
        return [rng.choice(numeric_pool)]
    first = rng.choice(pool)
    if kind == "single":
        return [first]
    others = [p for p in pool if (p.file, p.page) != (first.file, first.page)]
    return [first, rng.choice(others)] if others else None
