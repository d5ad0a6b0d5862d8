"""Throughput: a re-run pays only for what changed (answers and judgements cached), and --workers answers
questions in parallel against a server. The server is a fake OpenAI-compatible one at the HTTP boundary;
index, embedder, TruLens and SQLite are real."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from fake_openai import FakeOpenAIServer
from rag.errors import ConfigError
from rag.evaluation.questions import load_questions

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = load_questions(ROOT / "eval_questions" / "sample.jsonl")[:4]
DELAY_S = 0.3


class SlowServer:
    """Answers after DELAY_S and records how many requests were in flight at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = self.peak = self.calls = 0

    def __call__(self, body: dict) -> str:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        time.sleep(DELAY_S)
        with self.lock:
            self.active -= 1
        return "Full-time employees get 10 working days of paid sick leave per calendar year [1]."


@pytest.fixture()
def served(sample_app, tmp_path):
    from rag import RAG

    reply = SlowServer()
    with FakeOpenAIServer(reply) as server:
        app = RAG(sample_app.config.replace(llm_provider="openai_like", llm_base_url=server.base_url,
                                            llm_model="fake", judge="lexical",
                                            database_url=f"sqlite:///{tmp_path / 'trulens.sqlite'}"))
        yield app, reply


def run(app, tmp_path, name, **kwargs):
    from rag.evaluation import evaluate

    return evaluate(app, QUESTIONS, retrievers=["basic"], judge="lexical", progress=False,
                    output_dir=tmp_path / name, **kwargs)


def test_rerun_takes_answers_and_judgements_from_the_cache(served, tmp_path):
    app, reply = served
    first = run(app, tmp_path, "first")
    assert reply.calls == len(QUESTIONS)
    assert first.cache.startswith(f"answers 0 of {len(QUESTIONS)} from cache")

    second = run(app, tmp_path, "second")
    assert reply.calls == len(QUESTIONS)  # nothing was asked again
    hits = re.fullmatch(r"answers (\d+) of (\d+) from cache; judgements (\d+) of (\d+) from cache", second.cache)
    assert hits, second.cache
    # every answer, and every judgement (one per context for context relevance, one each for the others)
    assert hits[1] == hits[2] == str(len(QUESTIONS)) and hits[3] == hits[4] and int(hits[3]) >= 3 * len(QUESTIONS)
    for col in ("answer", "groundedness", "context_relevance", "answer_relevance", "tokens"):
        assert second.rows[col].tolist() == first.rows[col].tolist(), col
    assert second.rows["record_id"].notna().all()  # still recorded in TruLens, as a new record

    run(app, tmp_path, "off", cache=False)
    assert reply.calls == 2 * len(QUESTIONS)

    from rag.evaluation import leaderboard

    [stored] = leaderboard(app.config).to_dict(orient="records")
    assert stored["records"] == 3 * len(QUESTIONS)  # three runs recorded ...
    assert stored["questions"] == stored["triad_n"] == len(QUESTIONS)  # ... but each question counts once


def test_workers_answer_in_parallel_in_question_order(served, tmp_path):
    app, reply = served
    results = run(app, tmp_path, "parallel", cache=False, workers=4)
    assert reply.peak > 1, "requests were never in flight together"
    rows = results.rows
    assert rows["question"].tolist() == [q.question for q in QUESTIONS]
    assert rows["error"].isna().all() and rows["record_id"].notna().all()
    assert rows["record_id"].nunique() == len(QUESTIONS)
    for col in ("groundedness", "context_relevance", "answer_relevance", "hit_rate@1"):
        assert rows[col].notna().all(), col


def test_workers_need_a_server_generator(sample_app, tmp_path):
    from rag.evaluation import evaluate

    with pytest.raises(ConfigError, match="needs a server generator"):
        evaluate(sample_app, QUESTIONS, retrievers=["basic"], judge="lexical", progress=False, workers=2)
    with pytest.raises(ConfigError, match="at least 1"):
        evaluate(sample_app, QUESTIONS, retrievers=["basic"], judge="lexical", progress=False, workers=0)
