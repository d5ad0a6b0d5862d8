"""The OpenAI-compatible judge against a local fake server: no network, no API key needed.

The fake server implements only ``/v1/chat/completions`` (like vLLM, Ollama or llama.cpp's
server without the Responses API) and answers like a judge LLM would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from fake_openai import FakeOpenAIServer  # tests/ helper: /v1/chat/completions only, 404 elsewhere

from rag import Config
from rag.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HANDBOOK = "northwind_employee_handbook.pdf"
ANSWER = "Full-time employees get 10 working days of paid sick leave per calendar year [1]."


def judge_reply(system: str, user: str) -> str:
    """What a judge LLM would say to each TruLens prompt."""
    if "Split the following statement into individual sentences" in system:
        return "\n".join(s for s in re.split(r"(?<=[.!?])\s+", user.strip()) if s)
    if system.startswith("Convert the following text into a strict JSON object"):
        # TruLens asks to reformat a plain-text verdict as JSON; a capable model copies it over.
        fields = re.match(r"Criteria:\s*(.*)\nSupporting Evidence:\s*(.*)\nScore:\s*(\d+)", user, re.S)
        if not fields:
            return user
        return json.dumps({"criteria": fields.group(1).strip(), "supporting_evidence": fields.group(2).strip(),
                           "score": int(fields.group(3))})
    if "INFORMATION OVERLAP" in system:  # groundedness: asks for one-line JSON
        statement = user.split("STATEMENT:", 1)[1].split("\n\n", 1)[0].strip()
        supported = "sick leave" in statement.lower()
        return json.dumps({"criteria": statement,
                           "supporting_evidence": "The source lists 10 working days of sick leave."
                           if supported else "Nothing in the source supports this.",
                           "score": 3 if supported else 0})
    if "SEARCH RESULT RATER" in system:  # context relevance
        return ("Criteria: The search result must answer the user query.\n"
                "Supporting Evidence: It gives the sick leave entitlement.\nScore: 2")
    if "RELEVANCE grader" in system:  # answer relevance
        return ("Criteria: The response must answer the prompt.\n"
                "Supporting Evidence: It states the number of sick days.\nScore: 3")
    if "numbered sources" in system:  # the RAG app's own generator, when pointed here
        return ANSWER
    return "Criteria: unknown prompt\nSupporting Evidence: none\nScore: 0"


def reply(body: dict) -> str:
    messages = body.get("messages", [])
    system = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "system")
    user = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
    return judge_reply(system, user)


def paths(server: FakeOpenAIServer, since: int = 0) -> list[str]:
    return [r["path"] for r in server.requests[since:]]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(reply) as fake:
        yield fake


def judge_config(server: FakeOpenAIServer, tmp: Path, **extra) -> Config:
    return Config(storage_dir=tmp, judge="openai", judge_model="fake-judge", judge_base_url=server.base_url,
                  judge_api_key="sk-test", request_timeout=30.0, **extra)


def test_openai_compatible_judge_scores(server, tmp_path):
    from trulens.core.metric.metric import GroundednessConfigs

    from rag.evaluation.judges import make_judge

    provider = make_judge(judge_config(server, tmp_path), embed=lambda texts: None).trulens_provider
    before = len(server.requests)
    question = "How many days of paid sick leave do employees get?"
    context = "Sick leave: 10 working days per calendar year, paid."

    score, meta = provider.context_relevance_with_cot_reasons(question, context)
    assert score == pytest.approx(2 / 3)
    assert "sick leave entitlement" in meta["reason"]

    score, meta = provider.relevance_with_cot_reasons(question, ANSWER)
    assert score == pytest.approx(1.0)
    assert "Supporting Evidence" in meta["reason"]

    score, meta = provider.groundedness_measure_with_cot_reasons(
        [context], ANSWER + " The CEO also gives everyone a free car.",
        groundedness_configs=GroundednessConfigs(use_sent_tokenize=False, filter_trivial_statements=False))
    assert score == pytest.approx(0.5)  # one supported statement of two
    assert len(meta["reasons"]) == 2

    seen = paths(server, before)
    assert seen and all(p == "/v1/chat/completions" for p in seen), seen  # never /v1/responses
    models = {r["body"].get("model") for r in server.requests[before:]}
    assert models == {"fake-judge"}


def test_missing_api_key_is_a_clear_config_error(monkeypatch, tmp_path):
    from rag.evaluation.judges import make_judge

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_judge(Config(storage_dir=tmp_path, judge="openai", judge_api_key=None), embed=lambda texts: None)


def test_evaluate_with_missing_key_fails_before_any_work(monkeypatch, tmp_path):
    from rag import RAG
    from rag.evaluation import evaluate

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = RAG(Config(storage_dir=tmp_path))
    with pytest.raises(ConfigError, match="API key"):
        evaluate(app, ["How many sick days?"], retrievers=["basic"], judge="openai", progress=False)
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "evaluations.sqlite").exists()


def test_recorded_evaluation_with_openai_judge(server, sample_app, tmp_path, monkeypatch):
    """Full path: TruLens records the app, the fake server judges, scores land in the database."""
    from rag import RAG
    from rag.evaluation import evaluate, leaderboard

    monkeypatch.chdir(tmp_path)  # TruLens must not create default.sqlite here
    # The session's ingested sample; the generator is the same fake server (fast, known answer).
    config = judge_config(server, sample_app.config.storage_dir, llm_provider="openai_like", llm_model="fake-llm",
                          llm_base_url=server.base_url, llm_api_key="sk-test",
                          database_url=f"sqlite:///{tmp_path / 'judge.sqlite'}")
    app = RAG(config)
    before = len(server.requests)

    results = evaluate(app, [{"question": "How many days of paid sick leave does a full-time employee get?",
                              "reference_answer": "10 working days per calendar year.",
                              "evidence": [{"file": HANDBOOK, "page": 2}]}],
                       retrievers=["basic:top_k=2"], judge="openai", progress=False, output_dir=tmp_path / "out")

    row = results.rows.iloc[0]
    assert row["answer"] == ANSWER
    assert row["judge"].startswith("openai:fake-judge@127.0.0.1")
    assert row["context_relevance"] == pytest.approx(2 / 3)
    assert row["answer_relevance"] == pytest.approx(1.0)
    assert row["groundedness"] == pytest.approx(1.0)
    assert "Supporting Evidence" in row["answer_relevance_reason"]
    assert "10 working days" in row["groundedness_reason"]
    assert row["correctness"] == pytest.approx(1.0)
    judge_calls = [r for r in server.requests[before:] if r["body"].get("model") == "fake-judge"]
    assert len(judge_calls) >= 4  # 2 chunks + split + statement + answer relevance (+ reformatting)
    assert all(r["auth"] == "Bearer sk-test" for r in judge_calls)
    assert all(p == "/v1/chat/completions" for p in paths(server, before))

    board = leaderboard(config)
    assert list(board["judge"]) == [row["judge"]]
    assert board["groundedness"].iloc[0] == pytest.approx(1.0)
    assert not (tmp_path / "default.sqlite").exists()
