"""The OpenAI-compatible judge against a local fake server: no network, no API key needed.

The fake server implements only ``/v1/chat/completions`` (like vLLM, Ollama or llama.cpp's
server without the Responses API) and answers like a judge LLM would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag import Config
from rag.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "data" / "northwind_employee_handbook.pdf"
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


class FakeOpenAI:
    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server.lock:
                    server.requests.append((self.path, body))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "Not Found", "type": "invalid_request_error"}})
                    return
                messages = body.get("messages", [])
                system = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "system")
                user = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
                text = judge_reply(system, user)
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                })

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def judge_config(server: FakeOpenAI, tmp: Path, **extra) -> Config:
    return Config(storage_dir=tmp, judge="openai", judge_model="fake-judge", judge_base_url=server.base_url,
                  judge_api_key="sk-test", request_timeout=30.0, **extra)


def test_openai_compatible_judge_scores(server, tmp_path):
    from trulens.core.metric.metric import GroundednessConfigs

    from rag.evaluation.providers import openai_provider

    provider = openai_provider(judge_config(server, tmp_path))
    before = len(server.paths())
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

    paths = server.paths()[before:]
    assert paths and all(p == "/v1/chat/completions" for p in paths), paths  # never /v1/responses
    models = {body.get("model") for _, body in server.requests[before:]}
    assert models == {"fake-judge"}


def test_missing_api_key_is_a_clear_config_error(monkeypatch, tmp_path):
    from rag.evaluation.providers import openai_provider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        openai_provider(Config(storage_dir=tmp_path, judge="openai", judge_api_key=None))


def test_evaluate_with_missing_key_fails_before_any_work(monkeypatch, tmp_path):
    from rag import RAG
    from rag.evaluation import evaluate

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = RAG(Config(storage_dir=tmp_path))
    with pytest.raises(ConfigError, match="API key"):
        evaluate(app, ["How many sick days?"], retrievers=["basic"], judge="openai", progress=False)
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "evaluations.sqlite").exists()


@pytest.mark.skipif(not HANDBOOK.is_file(), reason="sample PDF missing")
def test_recorded_evaluation_with_openai_judge(server, tmp_path, monkeypatch):
    """Full path: TruLens records the app, the fake server judges, scores land in the database."""
    from rag import RAG
    from rag.evaluation import evaluate, leaderboard

    monkeypatch.chdir(tmp_path)  # TruLens must not create default.sqlite here
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(HANDBOOK, data / HANDBOOK.name)
    # The generator is the same fake server: fast, and the answer is known.
    config = judge_config(server, tmp_path / "storage", llm_provider="openai_like", llm_model="fake-llm",
                          llm_base_url=server.base_url, llm_api_key="sk-test",
                          database_url=f"sqlite:///{tmp_path / 'judge.sqlite'}")
    app = RAG(config)
    app.ingest(data, progress=False)
    before = len(server.paths())

    results = evaluate(app, [{"question": "How many days of paid sick leave does a full-time employee get?",
                              "reference_answer": "10 working days per calendar year.",
                              "evidence": [{"file": HANDBOOK.name, "page": 2}]}],
                       retrievers=["basic:top_k=2"], judge="openai", progress=False)

    row = results.rows.iloc[0]
    assert row["answer"] == ANSWER
    assert row["judge"].startswith("openai:fake-judge@127.0.0.1")
    assert row["context_relevance"] == pytest.approx(2 / 3)
    assert row["answer_relevance"] == pytest.approx(1.0)
    assert row["groundedness"] == pytest.approx(1.0)
    assert "Supporting Evidence" in row["answer_relevance_reason"]
    assert "10 working days" in row["groundedness_reason"]
    assert row["correctness"] == pytest.approx(1.0)
    judge_calls = [b for p, b in server.requests[before:] if b.get("model") == "fake-judge"]
    assert len(judge_calls) >= 4  # 2 chunks + split + statement + answer relevance (+ reformatting)
    assert all(p == "/v1/chat/completions" for p in server.paths()[before:])

    board = leaderboard(config)
    assert list(board["judge"]) == [row["judge"]]
    assert board["groundedness"].iloc[0] == pytest.approx(1.0)
    assert not (tmp_path / "default.sqlite").exists()
