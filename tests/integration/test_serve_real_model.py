"""`rag serve` started as a user starts it, with the real embedder and the tiny SmolLM2 generator: the
official `openai` client (plain and streaming), a graceful stop that finishes the stream in flight,
and kill -9 mid-stream, restart, with the store intact."""

from __future__ import annotations

import hashlib
import json
import signal
import time

import httpx
import pytest
from serve_process import free_port, handbook_storage, start_server, stop_server

from rag import Config
from rag.evaluation.labels import LabelStore

KEY = "integration-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}
ENV = {"RAG_API_KEYS": KEY, "RAG_MAX_NEW_TOKENS": "48"}
QUESTION = "How long must passwords be?"


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return handbook_storage(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def server(storage):
    process, url = start_server(storage, free_port(), ENV)
    yield process, url
    stop_server(process)


def store_files(storage) -> dict[str, str]:
    """SHA-256 of every file of the index (the evaluation database is the labels', not the index's)."""
    return {str(p.relative_to(storage)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(storage.rglob("*")) if p.is_file() and not p.name.startswith("evaluations.sqlite")}


def stream_lines(url: str, body: dict):
    """An open streaming chat request: (response, iterator of its SSE data lines)."""
    client = httpx.Client(timeout=120)
    request = client.build_request("POST", url + "/v1/chat/completions", headers=HEADERS, json={**body, "stream": True})
    response = client.send(request, stream=True)
    assert response.status_code == 200
    return response, (line[6:] for line in response.iter_lines() if line.startswith("data: "))


def test_openai_client_plain_and_streaming_with_the_real_model(server):
    from openai import OpenAI

    client = OpenAI(base_url=server[1] + "/v1", api_key=KEY, max_retries=0, timeout=120)
    plain = client.chat.completions.create(model="rag-basic", messages=[{"role": "user", "content": QUESTION}])
    text = plain.choices[0].message.content
    sources = plain.model_extra["sources"]
    assert sources and sources[0]["file"] == "handbook.pdf" and sources[0]["page"] >= 1
    assert text.split("\n\nSources:\n")[0].strip() and f"[1] {sources[0]['citation']}" in text
    assert plain.usage.completion_tokens > 0 and plain.usage.prompt_tokens > 0
    assert plain.choices[0].finish_reason in ("stop", "length")

    chunks = list(client.chat.completions.create(model="rag-sentence_window", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 4  # token by token, then the citations
    assert "".join(pieces).split("\n\nSources:\n")[1].startswith("[1] handbook.pdf p")
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and final[0].model_extra["retriever"].startswith("sentence_window[")
    metrics = httpx.get(server[1] + "/metrics", headers=HEADERS).text
    assert int(metrics.split('rag_tokens_total{kind="completion"} ')[1].split()[0]) >= plain.usage.completion_tokens


def test_sigterm_lets_the_stream_in_flight_finish(server):
    process, url = server
    response, lines = stream_lines(url, {"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
    received = []
    for data in lines:
        received.append(data)
        if '"content": "' in data and '"content": ""' not in data:  # the first piece of the answer
            break
    process.send_signal(signal.SIGTERM)
    received += list(lines)
    response.close()
    assert received[-1] == "[DONE]", received[-3:]
    assert any(json.loads(d).get("sources") for d in received[:-1])
    assert process.wait(60) == 0


def test_kill_9_mid_stream_then_restart_leaves_the_store_intact(storage, tmp_path):
    process, url = start_server(storage, free_port(), ENV)
    try:
        before = httpx.post(url + "/v1/retrieve", headers=HEADERS, json={"question": QUESTION}).json()["data"]
        answer = httpx.post(url + "/v1/chat/completions", headers=HEADERS, timeout=120,
                            json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]}).json()
        assert httpx.post(url + "/v1/feedback", headers=HEADERS, json={"id": answer["id"], "rating": "up"}
                          ).status_code == 201
        files = store_files(storage)
        response, lines = stream_lines(url, {"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
        next(lines), next(lines)  # the stream has started
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        with pytest.raises(httpx.HTTPError):
            list(lines)  # cut off: no [DONE]
        response.close()
    finally:
        stop_server(process)
    assert store_files(storage) == files

    process, url = start_server(storage, free_port(), ENV)
    try:
        after = httpx.post(url + "/v1/retrieve", headers=HEADERS, json={"question": QUESTION}).json()["data"]
        assert after == before
        chat = httpx.post(url + "/v1/chat/completions", headers=HEADERS, timeout=120,
                          json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
        assert chat.status_code == 200 and chat.json()["sources"]
    finally:
        assert stop_server(process) == 0
    labels = LabelStore(Config(storage_dir=storage).resolved_database_url).labels(record_id=answer["id"])
    assert [(l.value, l.question) for l in labels] == [(1, QUESTION)]
