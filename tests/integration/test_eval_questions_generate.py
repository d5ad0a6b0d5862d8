"""`rag questions generate`: test sets from the user's PDFs. The logic against a fake OpenAI-compatible
server (replies made from the prompt's passages, some of them bad on purpose); the plumbing once with the
real bundled SmolLM2-135M. PDFs, page reading and the embedder are real."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from fake_openai import FakeOpenAIServer
from rag.evaluation.generate_questions import generate_questions, passages
from rag.evaluation.metrics import tokens
from rag.evaluation.questions import load_questions


def sentences(passage: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", passage) if len(s.split()) >= 8]


class Writer:
    """Good questions from the passages, with every fourth reply bad in a known way."""

    def __init__(self):
        self.calls = itertools.count()
        self.first_question = None

    def __call__(self, body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        found = re.findall(r"Passage(?: \d)?:\n(.*?)\n\n", prompt, re.S)
        if not found:  # not a question-writing prompt: the app asking it to answer (evaluation)
            return "The first source answers this [1]."
        call = next(self.calls)
        if call % 8 == 1:
            return "Sorry, I cannot help with that."
        if call % 8 == 3:
            return "Question: What colour are the elephants in the report?\nAnswer: purple elephants dancing"
        if call % 8 == 5 and self.first_question:
            return f"Question: {self.first_question}\nAnswer: whatever"
        wants_number = "number, amount or date" in prompt
        pool = [s for s in sentences(found[0]) if not wants_number or re.search(r"\d", s)] or sentences(found[0])
        words = pool[0].split()
        at = next((i for i, w in enumerate(words) if re.search(r"\d", w) and i >= 3), len(words) - 5)
        answer = " ".join(words[at:at + 5]).rstrip(".")
        if call % 8 == 7:  # the answer given away in the question
            return f"Question: Is it true that {answer}?\nAnswer: {answer}"
        question = f"According to the document, what comes after \"{' '.join(words[:3])}\""
        if len(found) > 1:
            other = sentences(found[1])[0].split()
            question += f" and how does it relate to \"{' '.join(other[:4])}\""
            answer += f"; {' '.join(other[-4:]).rstrip('.')}"
        question += "?"
        self.first_question = self.first_question or question
        return f"Question: {question}\nAnswer: {answer}"


@pytest.fixture(scope="module")
def served(sample_pdfs):
    from rag import Config

    writer = Writer()
    with FakeOpenAIServer(writer) as server:
        yield Config(llm_provider="openai_like", llm_base_url=server.base_url, llm_model="fake"), server


def test_questions_are_checked_typed_and_carry_their_evidence(served, sample_pdfs, tmp_path):
    config, server = served
    report = generate_questions(config, sample_pdfs, n=12, seed=3)
    kept = report.questions
    assert 8 <= len(kept) <= 12 and report.attempts == len(kept) + sum(report.dropped.values())
    designed = {"unparsable", "not answerable from its evidence", "leaks the answer", "near duplicate"}
    assert designed <= set(report.dropped)
    assert set(report.kept_by_type()) == {"single", "multi", "numeric"}
    assert report.summary().startswith(f"kept {len(kept)} of {report.attempts} generated (multi ")

    by_page: dict = {}  # every passage of a page
    for p in passages(sample_pdfs):
        by_page[(p.file, p.page)] = by_page.get((p.file, p.page), "") + " " + p.text
    for q in kept:
        assert q["question"].endswith("?") and q["reference_answer"]
        evidence_text = " ".join(by_page[(e["file"], e["page"])] for e in q["evidence"])
        answer_words = set(tokens(q["reference_answer"]))
        assert len(answer_words & set(tokens(evidence_text))) / len(answer_words) >= 0.7, q
        if q["type"] == "multi":
            assert len({(e["file"], e["page"]) for e in q["evidence"]}) == 2
        if q["type"] == "numeric":
            assert re.search(r"\d", q["reference_answer"])
    assert len({q["question"] for q in kept}) == len(kept)

    path = report.write(tmp_path / "questions.jsonl")
    loaded = load_questions(path)
    assert [q.question for q in loaded] == [q["question"] for q in kept]
    assert all(q.evidence and q.reference_answer for q in loaded)


def test_generated_set_scores_in_eval(served, sample_app, sample_pdfs, tmp_path):
    """The file gives hit rate, MRR and correctness in `evaluate` (answers: the fake server's)."""
    from rag import RAG
    from rag.evaluation import evaluate

    config, _ = served
    path = generate_questions(config, sample_pdfs, n=3, seed=5).write(tmp_path / "q.jsonl")
    app = RAG(sample_app.config.replace(llm_provider="openai_like", llm_base_url=config.llm_base_url,
                                        llm_model="fake", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    results = evaluate(app, path, retrievers=["basic"], judge="lexical", progress=False, output_dir=tmp_path / "out")
    board = results.leaderboard.iloc[0]
    asked = len(load_questions(path))  # the fake writes some bad questions on purpose: those are dropped
    assert asked >= 2
    for metric in ("hit_rate", "mrr", "correctness", "hit_rate@5"):
        assert board[f"{metric}_n"] == asked and 0.0 <= board[metric] <= 1.0, metric
    assert board["hit_rate@5"] > 0  # the evidence pages are where the passages came from


def test_cli_writes_the_file_and_the_report(served, sample_pdfs, tmp_path, capsys):
    from rag.cli import main

    config, _ = served
    out = tmp_path / "cli.jsonl"
    code = main(["--llm-provider", "openai_like", "--llm-base-url", config.llm_base_url, "--llm-model", "fake",
                 "questions", "generate", str(sample_pdfs), "-n", "4", "-o", str(out), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kept"] == 4 and len(out.read_text().splitlines()) == 4
    assert data["attempts"] == 4 + sum(data["dropped"].values())

    assert main(["questions", "generate", str(tmp_path / "missing"), "-n", "2"]) == 2
    assert "missing" in capsys.readouterr().err


def test_plumbing_with_the_bundled_135m_model(sample_pdfs, tmp_path):
    """One small real run: the tiny model's questions are mostly dropped; the report must add up."""
    from rag import Config

    report = generate_questions(Config(llm_model="smollm2-135m", max_new_tokens=64), sample_pdfs, n=1, seed=1)
    assert 1 <= report.attempts <= 3
    assert len(report.questions) + sum(report.dropped.values()) == report.attempts
    for q in report.questions:
        assert q["question"].endswith("?") and q["evidence"]
