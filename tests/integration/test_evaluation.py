"""Evaluation: question files, reference metrics, the offline TruLens provider, and a real
two-version evaluation recorded in a temporary SQLite database (real models, no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Config
from rag.errors import InputError
from rag.evaluation.metrics import (answer_correctness, hit_at_k, ndcg_at_k, reciprocal_rank, retrieval_scores,
                                    source_matches, token_f1, token_recall)
from rag.evaluation.questions import as_questions, load_questions

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval_questions" / "sample.jsonl"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def ingested(sample_app, tmp_path_factory):
    """The sample PDFs ingested once per session (conftest's ``sample_app``), short answers, own SQLite DB."""
    from rag import RAG

    database = tmp_path_factory.mktemp("trulens") / "trulens.sqlite"
    return RAG(sample_app.config.replace(max_new_tokens=32, database_url=f"sqlite:///{database}"))


@pytest.fixture(scope="module")
def embed():
    from rag.embedding import embed_texts

    config = Config()
    return lambda texts: embed_texts(config, texts)


# ---------------------------------------------------------------- question files

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_questions_load():
    questions = load_questions(SAMPLE)
    assert len(questions) >= 10
    first = questions[0]
    assert first.question.startswith("How many days of paid sick leave")
    assert first.reference_answer and first.evidence == [
        {"file": "northwind_employee_handbook.pdf", "page": 2, "page_end": None}]
    text = load_questions(ROOT / "eval_questions" / "eval_questions.txt")
    assert [q.question for q in text] == [q.question for q in questions]


def test_plain_text_skips_blank_lines_and_comments(tmp_path):
    path = write(tmp_path, "q.txt", "# a comment\n\nWhat is A?\n   \n  # indented comment\nWhat is B?  \n")
    assert [q.question for q in load_questions(path)] == ["What is A?", "What is B?"]


def test_jsonl_accepts_query_and_answer_keys_and_passages(tmp_path):
    path = write(tmp_path, "q.jsonl", "\n".join([
        json.dumps({"query": "What is A?", "answer": "A is a letter."}),
        "# comment",
        json.dumps({"question": "What is B?", "evidence": ["B is the second letter.", {"file": "x.pdf"}]}),
    ]))
    a, b = load_questions(path)
    assert (a.question, a.reference_answer, a.evidence) == ("What is A?", "A is a letter.", [])
    assert b.evidence == [{"text": "B is the second letter."}, {"file": "x.pdf", "page": None, "page_end": None}]


@pytest.mark.parametrize("lines, bad_line, message", [
    (['{"question": "ok?"}', '{"question": "broken"'], 2, "invalid JSON"),
    (['{"question": "ok?"}', '', '{"reference_answer": "x"}'], 3, "missing the \"question\" field"),
    (['{"question": 42}'], 1, "\"question\" must be a string"),
    (['{"question": "q?", "reference_answer": ["x"]}'], 1, "\"reference_answer\" must be a string"),
    (['{"question": "q?", "evidence": [{"file": "a.pdf", "page": "two"}]}'], 1, "\"page\" must be a positive integer"),
    (['{"question": "q?", "evidence": [{"page": 2}]}'], 1, "needs a \"file\""),
    (['{"question": "q?", "evidence": 5}'], 1, "\"evidence\" must be a list"),
    (['# header', '[1, 2]'], 2, "expected a JSON object"),
    (['{"question": "   "}'], 1, "the question is empty"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, lines, bad_line, message):
    path = write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        load_questions(path)
    text = str(info.value)
    assert str(path) in text and f"line {bad_line}" in text and message in text, text


def test_missing_and_empty_question_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_questions(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="no questions"):
        load_questions(write(tmp_path, "empty.txt", "# only a comment\n\n"))
    with pytest.raises(InputError, match="empty"):
        as_questions([])


# ---------------------------------------------------------------- metrics

SOURCES = [  # ranked as retrieved
    {"file": "other.pdf", "page": 2, "page_end": 2, "text": "Unrelated."},
    {"file": "handbook.pdf", "page": 5, "page_end": 6, "text": "Leave is 10 working days per year."},
    {"file": "handbook.pdf", "page": 6, "page_end": 6, "text": "More about leave."},
    {"file": "handbook.pdf", "page": 9, "page_end": 9, "text": "Expenses."},
]


def test_source_matching_uses_file_and_page_range():
    assert source_matches(SOURCES[1], {"file": "handbook.pdf", "page": 6})  # inside 5..6
    assert source_matches(SOURCES[1], {"file": "/some/dir/Handbook.PDF", "page": 5})  # base name, any case
    assert not source_matches(SOURCES[1], {"file": "handbook.pdf", "page": 7})
    assert not source_matches(SOURCES[0], {"file": "handbook.pdf", "page": 2})
    assert source_matches(SOURCES[3], {"file": "handbook.pdf", "page": None})  # file-level evidence
    assert source_matches(SOURCES[1], {"text": "leave is 10 working days"})  # gold passage


def test_hit_rate_and_mrr_on_hand_made_rankings():
    evidence = [{"file": "handbook.pdf", "page": 6}]
    assert hit_at_k(SOURCES, evidence, k=1) == 0.0
    assert hit_at_k(SOURCES, evidence, k=2) == 1.0
    assert hit_at_k(SOURCES, evidence) == 1.0
    assert reciprocal_rank(SOURCES, evidence) == pytest.approx(0.5)
    assert reciprocal_rank(SOURCES, [{"file": "handbook.pdf", "page": 9}]) == pytest.approx(0.25)
    assert reciprocal_rank(SOURCES, [{"file": "missing.pdf", "page": 1}]) == 0.0
    assert hit_at_k(SOURCES, []) is None and reciprocal_rank(SOURCES, []) is None


def test_ndcg_counts_each_evidence_item_once():
    one = [{"file": "handbook.pdf", "page": 6}]
    # Relevant at rank 2 (and again at 3, which adds nothing): 1/log2(3).
    assert ndcg_at_k(SOURCES, one) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k(SOURCES[1:], one) == pytest.approx(1.0)
    two = [{"file": "handbook.pdf", "page": 5}, {"file": "handbook.pdf", "page": 9}]
    ideal = 1 + 1 / 1.5849625
    assert ndcg_at_k(SOURCES, two) == pytest.approx((1 / 1.5849625 + 1 / 2.3219281) / ideal, rel=1e-6)
    scores = retrieval_scores(SOURCES, one, k=1)
    assert scores == {"hit_rate": 0.0, "mrr": pytest.approx(0.5), "ndcg": pytest.approx(0.6309298, rel=1e-6)}


def test_answer_correctness_token_scores():
    reference = "10 working days of paid sick leave per calendar year."
    assert token_recall("You get 10 working days of paid sick leave each calendar year [1].", reference) == 1.0
    assert token_recall("You get 87 days of paid sick leave.", reference) < 0.7
    assert 0 < token_f1("10 working days", reference) < 1
    assert token_f1("", reference) == 0.0
    assert answer_correctness("anything", None) == {"correctness": None, "correctness_reason": None, "token_recall": None,
                                                    "token_f1": None, "answer_cosine": None}


def test_answer_correctness_with_embeddings(embed):
    reference = "At least 14 characters."
    good = answer_correctness("Passwords must have at least 14 characters [1].", reference, embed=embed)
    bad = answer_correctness("The cafeteria opens at noon.", reference, embed=embed)
    assert good["correctness"] == 1.0 and bad["correctness"] == 0.0
    assert good["answer_cosine"] > bad["answer_cosine"]


# ---------------------------------------------------------------- offline TruLens provider

CONTEXT = ("Sick leave: full-time employees receive 10 working days of paid sick leave per calendar year. "
           "A medical certificate is needed from the 4th consecutive day of absence.")
QUESTION = "How many days of paid sick leave does a full-time employee get?"


def test_local_provider_groundedness_prefers_grounded_answer(embed):
    from rag.evaluation.judges.lexical import LocalJudge
    from rag.evaluation.trulens.providers import JudgeProvider

    provider = JudgeProvider(LocalJudge(embed))
    grounded = provider.groundedness_measure_with_cot_reasons(
        [CONTEXT], "Full-time employees receive 10 working days of paid sick leave per calendar year [1].")
    invented = provider.groundedness_measure_with_cot_reasons(
        [CONTEXT], "Employees get 30 days of sick leave and a free company car after their first month.")
    for score, meta in (grounded, invented):
        assert isinstance(score, float) and 0.0 <= score <= 1.0
        assert isinstance(meta, dict) and meta["reason"].strip()  # TruLens' (score, {"reason": ...}) form
    assert grounded[0] > invented[0]


def test_local_provider_relevance_methods(embed):
    from rag.evaluation.judges.lexical import LocalJudge
    from rag.evaluation.trulens.providers import JudgeProvider

    provider = JudgeProvider(LocalJudge(embed))
    relevant = provider.context_relevance_with_cot_reasons(QUESTION, CONTEXT)
    unrelated = provider.context_relevance_with_cot_reasons(QUESTION, "The pump's pH probe is calibrated with buffer 7 first.")
    assert relevant[0] > unrelated[0]
    answer = provider.relevance_with_cot_reasons(QUESTION, "Full-time employees get 10 paid sick days per year.")
    off_topic = provider.relevance_with_cot_reasons(QUESTION, "Our office is in Rotterdam.")
    assert answer[0] > off_topic[0]
    assert provider.context_relevance(QUESTION, CONTEXT) == pytest.approx(relevant[0])


# ---------------------------------------------------------------- TruLens session

def test_database_url_is_passed_to_trulens_unchanged(monkeypatch):
    import trulens.core

    from rag.evaluation.trulens import session as recording

    seen = {}

    class FakeSession:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    url = "postgresql://rag:secret@db.example:5432/evals?sslmode=require"
    monkeypatch.setattr(trulens.core, "TruSession", FakeSession)
    session = recording.open_session(Config(database_url=url))
    assert isinstance(session, FakeSession)
    assert seen == {"database_url": url}
    assert recording.redact(url) == "postgresql://rag:***@db.example:5432/evals?sslmode=require"


def test_default_database_is_in_the_storage_folder(tmp_path):
    from rag.evaluation.trulens.session import session_kwargs

    url = session_kwargs(Config(storage_dir=tmp_path))["database_url"]
    assert url == f"sqlite:///{(tmp_path / 'evaluations.sqlite').resolve()}"


def test_importing_evaluation_does_not_import_trulens():
    code = ("import sys, rag, rag.evaluation; from rag.evaluation import leaderboard, load_questions; "
            "bad = [m for m in sys.modules if m.startswith(('trulens', 'torch', 'llama_index'))]; "
            "assert not bad, bad[:5]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- the real thing

LOCAL_LABEL = "local:probability:qwen2.5-coder-1.5b+lexical"  # the default judge, named by what it runs


def test_two_version_evaluation_records_scores_and_ranks(ingested, tmp_path, monkeypatch):
    from rag.evaluation import evaluate, leaderboard
    from rag.evaluation.trulens.recording import FEEDBACK_NAMES
    from rag.evaluation.trulens.session import open_session

    monkeypatch.chdir(tmp_path)  # TruLens' implicit default.sqlite would appear here
    questions = load_questions(SAMPLE)[:2]
    retrievers = ["basic", "sentence_window:window_size=1"]
    results = evaluate(ingested, questions, retrievers=retrievers, judge="local", progress=False,
                       output_dir=tmp_path / "out")

    rows = results.rows
    assert len(rows) == 4 and rows["error"].isna().all()
    names = {ingested.spec(r).name for r in retrievers}
    assert set(rows["retriever"]) == names
    assert set(rows["judge"]) == {LOCAL_LABEL}
    for col in ("context_relevance", "groundedness", "answer_relevance"):
        values = rows[col].astype(float)
        assert values.between(0, 1).all(), (col, values.tolist())
        assert rows[f"{col}_reason"].str.len().gt(0).all()
    assert rows["hit_rate"].notna().all() and rows["mrr"].between(0, 1).all()
    assert rows["correctness"].between(0, 1).all()
    assert (rows["latency_s"] > 0).all() and (rows["tokens"] > 0).all()
    assert all(len(c) > 0 for c in rows["contexts"])

    board = results.leaderboard
    assert list(board["rank"]) == [1, 2]
    assert set(board["retriever"]) == names
    assert board["triad"].is_monotonic_decreasing
    for col in ("context_relevance", "groundedness", "answer_relevance", "correctness", "hit_rate", "mrr",
                "latency_s", "tokens"):
        assert board[col].notna().all(), col

    for key in ("rows_csv", "rows_json", "leaderboard_csv", "chart"):
        assert results.paths[key].is_file() and results.paths[key].stat().st_size > 0
    saved = json.loads(results.paths["rows_json"].read_text())
    assert len(saved["rows"]) == 4 and saved["judge"] == LOCAL_LABEL

    # The records and all three scores are in our database, not in ./default.sqlite.
    session = open_session(ingested.config)
    records, feedback = session.get_records_and_feedback(record_ids=list(rows["record_id"]))
    assert len(records) == 4 and set(FEEDBACK_NAMES) <= set(feedback)
    assert records[list(FEEDBACK_NAMES)].notna().all().all()
    assert not (tmp_path / "default.sqlite").exists()

    db_board = leaderboard(ingested.config)
    assert list(db_board["rank"]) == [1, 2]
    assert set(db_board["retriever"]) == names and set(db_board["judge"]) == {LOCAL_LABEL}
    assert list(db_board["records"]) == [2, 2]
    assert list(db_board["retriever"]) == list(board["retriever"])  # same ranking
