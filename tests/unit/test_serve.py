"""`rag serve` with the fake embedder and LLM: the official `openai` client against a real server on
127.0.0.1 (uvicorn in a thread), auth, limits, the bounded queue, feedback labels, metrics, reload."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import httpx
import pytest
from fakes import PROMPTS
from pdfs import make_pdf

from rag import RAG, Config
from rag.errors import ConfigError, RagError
from rag.evaluation.labels import Label, LabelStore

KEY = "test-key-0123456789abcdef"
PAGES = [
    "Travel policy. Economy class is required for flights under six hours.",
    "Sick leave. Full-time employees receive ten working days of paid sick leave per year.",
    "Passwords. Company accounts need passwords of at least fourteen characters.",
]
QUESTION = "How many days of paid sick leave?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def config(tmp_path_factory, fake_models):
    docs = tmp_path_factory.mktemp("docs")
    make_pdf(docs / "handbook.pdf", PAGES)
    config = Config(storage_dir=tmp_path_factory.mktemp("serve") / "storage", embed_model="fake-hash",
                    llm_provider="fake-echo", reranker="embedding", api_keys=KEY)
    report = RAG(config, progress=False).ingest(docs, progress=False)
    assert report.added == ["handbook.pdf"]
    return config


@pytest.fixture(scope="module")
def server(config):
    """``(base_url, app)``: the served app on a free port, with a small model queue and body limit."""
    import uvicorn

    from rag.serve import build

    app = build(config, model_waiting=0, max_body_bytes=20_000, max_question_chars=500, reload_interval_s=0.2)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(30)
    assert not thread.is_alive()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        yield client


def openai_client(server, key=KEY):
    from openai import OpenAI

    return OpenAI(base_url=server[0] + "/v1", api_key=key, max_retries=0, timeout=30)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    assert "Traceback" not in response.text and "/tmp" not in response.text
    return body["error"]


# ---------------------------------------------------------------- the OpenAI API

def test_openai_client_plain_answer_cites_sources(server):
    completion = openai_client(server).chat.completions.create(
        model="rag-basic", messages=[{"role": "user", "content": QUESTION}])
    text = completion.choices[0].message.content
    sources = completion.model_extra["sources"]
    assert text.startswith(sources[0]["text"].split(". ")[0]) and "[1]" in text  # the echo model quotes [1]
    assert f"\n\nSources:\n[1] {sources[0]['citation']}" in text  # the citations in the text
    assert sources[0]["file"] == "handbook.pdf" and sources[0]["page"] <= 2 <= sources[0]["page_end"]
    assert "sick leave" in sources[0]["text"] and isinstance(sources[0]["score"], float)
    assert sources[0]["citation"].startswith("handbook.pdf p")
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage  # the echo model's stream reports no tokens; the real model's does (integration)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert completion.model == "rag-basic" and completion.id.startswith("chatcmpl-")


def test_openai_client_stream_gives_the_same_answer_in_pieces(server):
    client = openai_client(server)
    plain = client.chat.completions.create(model="rag-sentence_window",
                                           messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(model="rag-sentence_window", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2 and "".join(pieces) == plain.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert finals[0].model_extra["sources"] == plain.model_extra["sources"]
    assert chunks[-1].usage is not None and not chunks[-1].choices  # include_usage: a last chunk of its own
    assert len({c.id for c in chunks}) == 1


def test_follow_up_is_condensed_from_the_history(server):
    PROMPTS.clear()
    first = openai_client(server).chat.completions.create(model="rag-basic",
                                                          messages=[{"role": "user", "content": QUESTION}])
    answer = first.choices[0].message.content
    follow_up = openai_client(server).chat.completions.create(model="rag-basic", messages=[
        {"role": "system", "content": "ignored"}, {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": answer}, {"role": "user", "content": "And for part-time staff?"}])
    condense = [p for p in PROMPTS if any("Follow-up question: And for part-time staff?" in m for m in p)]
    assert len(condense) == 1
    assert QUESTION in condense[0][-1] and answer.split("\n\nSources:")[0] in condense[0][-1]
    assert "Sources:" not in condense[0][-1]  # the citation footer is not part of the remembered answer
    assert follow_up.model_extra["standalone_question"] != "And for part-time staff?"


def test_models_lists_one_model_per_retriever_kind(server):
    ids = [m.id for m in openai_client(server).models.list()]
    assert ids == ["rag-basic", "rag-sentence_window", "rag-auto_merging"]


def test_retrieve_returns_contexts_without_the_llm(http):
    PROMPTS.clear()
    response = http.post("/v1/retrieve", json={"question": "minimum password length", "model": "rag-basic:top_k=1"})
    assert response.status_code == 200, response.text
    data = response.json()
    top = data["data"][0]
    assert len(data["data"]) == 1 and top["page_end"] >= 3 and "fourteen characters" in top["text"]
    assert top["citation"] == f"handbook.pdf pp. {top['page']}-3" if top["page"] < 3 else "handbook.pdf p. 3"
    assert data["retriever"].startswith("basic[") and not PROMPTS


def test_unknown_model_is_404_with_the_known_ones(http):
    response = http.post("/v1/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "model_not_found" and "rag-basic" in error["message"]
    response = http.post("/v1/retrieve", json={"question": "x", "model": "rag-nope"})
    assert response.status_code == 404 and "nope" in error_of(response)["message"]


# ---------------------------------------------------------------- auth

def test_api_keys_are_required_when_set(server):
    from openai import AuthenticationError

    base = server[0]
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": f"Basic {KEY}"}):
        response = httpx.post(base + "/v1/chat/completions", headers=headers,
                              json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
        assert response.status_code == 401, headers
        assert error_of(response)["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(base + "/metrics").status_code == 401
    assert httpx.get(base + "/v1/models", headers={"X-API-Key": KEY}).status_code == 200
    with pytest.raises(AuthenticationError):
        openai_client(server, key="wrong-key-0123456789").models.list()
    # The page and the health check hold no data: open.
    assert httpx.get(base + "/healthz").json()["status"] == "ok"
    page = httpx.get(base + "/")
    assert page.status_code == 200 and "<textarea id=\"question\"" in page.text
    assert httpx.get(base + "/static/chat.js").status_code == 200


def test_keys_are_kept_hashed_and_compared_whole():
    from rag.serve.auth import ApiKeys

    keys = ApiKeys(f" {KEY} , sha256:{hashlib.sha256(b'another-key-0123456789').hexdigest()}")
    assert keys.required and keys.accepts(KEY) and keys.accepts("another-key-0123456789")
    assert not keys.accepts(KEY[:-1]) and not keys.accepts(KEY + "x") and not keys.accepts("") and not keys.accepts(None)
    assert KEY not in repr(vars(keys))  # only digests are held
    assert ApiKeys(None).accepts(None) and not ApiKeys("").required
    with pytest.raises(ConfigError, match="shorter than 16"):
        ApiKeys("short")


def test_a_public_address_without_keys_refuses_to_start(config):
    from rag.serve import build

    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        with pytest.raises(ConfigError) as failure:
            build(config.replace(api_keys=None), host)
        assert str(failure.value) == (f"refusing to serve on {host} without API keys: set RAG_API_KEYS (or api_keys "
                                      "in rag.toml), or bind 127.0.0.1.")
    from rag.serve.auth import ApiKeys, check_binding

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_binding(host, ApiKeys(None))
    check_binding("0.0.0.0", ApiKeys(KEY))


def test_config_hides_the_keys(config):
    assert config.as_dict()["api_keys"] == "***" and KEY not in config.to_toml()


# ---------------------------------------------------------------- limits

def test_huge_body_is_413(http):
    big = {"model": "rag-basic", "messages": [{"role": "user", "content": "x" * 30_000}]}
    response = http.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert error_of(response) == {"message": "The request body is larger than 20000 bytes.",
                                  "type": "invalid_request_error", "code": "body_too_large"}

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(30):
            yield b"x" * 1000

    response = http.post("/v1/retrieve", content=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "body_too_large"


@pytest.mark.parametrize("body, status, code", [
    ({"model": "rag-basic", "messages": [{"role": "user", "content": "   "}]}, 422, "empty_question"),
    ({"model": "rag-basic", "messages": [{"role": "user", "content": "why? " * 200}]}, 422, "question_too_long"),
    ({"model": "rag-basic", "messages": []}, 422, None),
    ({"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "a"}]},
     422, None),
    ({"model": "rag-basic", "messages": [{"role": "robot", "content": QUESTION}]}, 422, None),
])
def test_bad_chat_requests_get_422_with_a_message(http, body, status, code):
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and "\n" not in error["message"]
    if code:
        assert error["code"] == code


def test_empty_retrieve_question_and_bad_json(http):
    response = http.post("/v1/retrieve", json={"question": ""})
    assert response.status_code == 422 and error_of(response)["code"] == "empty_question"
    response = http.post("/v1/retrieve", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_json"
    assert http.get("/v1/nothing").status_code == 404 and error_of(http.get("/v1/nothing"))["code"] == "not_found"


def test_full_model_queue_is_429_with_retry_after(server, http):
    queue = server[1].state.service.pipeline.model_queue
    release = threading.Event()
    queue.submit(release.wait)  # the model is busy, and this server keeps no one waiting (model_waiting=0)
    try:
        response = http.post("/v1/chat/completions",
                             json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1 and error_of(response)["type"] == "rate_limit_error"
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while queue.depth and time.monotonic() < deadline:
        time.sleep(0.02)
    response = http.post("/v1/chat/completions",
                         json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]})
    assert response.status_code == 200
    assert 'rag_rejected_total{queue="model"} 1' in http.get("/metrics").text


def test_failures_show_no_trace_or_path(server, http, monkeypatch):
    pipeline = server[1].state.service.pipeline

    def broken(question, spec):
        raise RuntimeError("boom in /home/someone/secret/module.py line 3")

    monkeypatch.setattr(pipeline, "retrieve", broken)
    response = http.post("/v1/retrieve", json={"question": "x"})
    assert response.status_code == 500
    assert "secret" not in response.text and "boom" not in response.text and error_of(response)["type"] == "server_error"

    def missing(question, spec):
        raise RagError("No index in /srv/private/storage: run `rag ingest PATH` first.")

    monkeypatch.setattr(pipeline, "retrieve", missing)
    response = http.post("/v1/retrieve", json={"question": "x"})
    assert response.status_code == 503 and "private" not in response.text


def test_scrub_replaces_paths_only():
    from rag.serve.app import scrub

    assert scrub("No index in /srv/a/storage: run it\n again") == "No index in <path>: run it again"
    assert scrub("see http://127.0.0.1:8000/v1 and 1/2") == "see http://127.0.0.1:8000/v1 and 1/2"


# ---------------------------------------------------------------- feedback, metrics, reload

def test_feedback_is_stored_as_a_label_in_the_evaluation_database(server, config, http):
    completion = openai_client(server).chat.completions.create(
        model="rag-basic", messages=[{"role": "user", "content": QUESTION}])
    response = http.post("/v1/feedback", json={"id": completion.id, "rating": "down", "comment": "too short"})
    assert response.status_code == 201, response.text
    labels = LabelStore(config.resolved_database_url).labels(record_id=completion.id)
    assert len(labels) == 1
    label = labels[0]
    assert (label.metric, label.value, label.question, label.source) == ("answer", 0, QUESTION, "feedback")
    assert label.answer == completion.choices[0].message.content.split("\n\nSources:")[0]
    assert label.retriever.startswith("basic[") and any("sick leave" in c for c in label.contexts)
    assert label.comment == "too short" and label.annotator.startswith("key:") and KEY not in label.annotator
    assert config.resolved_database_url.endswith("evaluations.sqlite")

    response = http.post("/v1/feedback", json={"id": "chatcmpl-unknown", "rating": "up"})
    assert response.status_code == 404 and error_of(response)["code"] == "answer_not_found"
    response = http.post("/v1/feedback", json={"id": completion.id, "rating": "meh"})
    assert response.status_code == 422 and "up" in error_of(response)["message"]
    response = http.post("/v1/feedback", json={"question": "Q?", "answer": "A.", "rating": "up"})
    assert response.status_code == 201
    assert [l.value for l in LabelStore(config.resolved_database_url).labels(metric="answer")][-1] == 1


def test_label_store_checks_and_filters(tmp_path):
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.sqlite'}")
    first = store.add(Label(metric="groundedness", value=1, question="q1", contexts=["c"], source="cli"))
    store.add(Label(metric="answer", value=0, question="q2"))
    assert first == 1 and [l.question for l in store.labels(metric="groundedness")] == ["q1"]
    assert store.labels(source="cli")[0].contexts == ["c"] and len(store.labels()) == 2
    for bad, message in ((Label(metric="nope", value=1, question="q"), "unknown label metric"),
                         (Label(metric="answer", value=2, question="q"), "label value"),
                         (Label(metric="answer", value=1, question=" "), "needs the question")):
        with pytest.raises(RagError, match=message):
            store.add(bad)
    assert len(store.labels()) == 2


def test_metrics_count_requests_latency_and_tokens(http):
    assert http.post("/v1/chat/completions",
                     json={"model": "rag-basic", "messages": [{"role": "user", "content": QUESTION}]}).status_code == 200
    text = http.get("/metrics").text
    count = int(text.split('rag_requests_total{route="/v1/chat/completions",method="POST",status="200"} ')[1].split()[0])
    assert count >= 1
    assert 'rag_request_seconds_bucket{route="/v1/chat/completions",le="+Inf"}' in text
    assert 'rag_tokens_total{kind="completion"} ' in text and "# TYPE rag_request_seconds histogram" in text
    # The model job may still be releasing its slot just after the reply is sent: the queue drains within moments.
    deadline = time.monotonic() + 10
    while "rag_queue_depth_model 0" not in text and time.monotonic() < deadline:
        time.sleep(0.05)
        text = http.get("/metrics").text
    assert "rag_queue_depth_model 0" in text


def test_index_reloads_after_an_ingest(server, config, http, tmp_path):
    before = http.get("/healthz").json()
    make_pdf(tmp_path / "more" / "handbook.pdf", PAGES)
    make_pdf(tmp_path / "more" / "canteen.pdf", ["Canteen. Lunch is served from noon to two o'clock."])
    report = RAG(config, progress=False).ingest(tmp_path / "more", progress=False)
    assert report.added == ["canteen.pdf"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the watcher looks every 0.2 s here
        health = http.get("/healthz").json()
        if health["reloads"] > before["reloads"]:
            break
        time.sleep(0.1)
    assert health["index_version"] != before["index_version"]
    files = {s["file"] for s in http.post("/v1/retrieve", json={"question": "When is lunch served in the canteen?"}
                                          ).json()["data"]}
    assert "canteen.pdf" in files
    assert "rag_index_reloads_total 1" in http.get("/metrics").text


def test_a_client_that_leaves_mid_stream_stops_the_answer(server, http, monkeypatch):
    from rag.chat import Chat

    written, closed = [], threading.Event()

    class EndlessReply:  # an answer that would take 50 s to write
        standalone = QUESTION

        def __iter__(self):
            try:
                for i in range(5000):
                    written.append(i)
                    yield f"word{i} "
                    time.sleep(0.01)
            finally:
                closed.set()

    monkeypatch.setattr(Chat, "ask", lambda self, question: EndlessReply())
    body = {"model": "rag-basic", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        events = (line for line in response.iter_lines() if line.startswith("data: "))
        assert sum('"content"' in data for data, _ in zip(events, range(6))) == 6  # then the client leaves
    assert closed.wait(10), "the generation went on after the client left"
    queue = server[1].state.service.pipeline.model_queue
    deadline = time.monotonic() + 10
    while queue.depth and time.monotonic() < deadline:
        time.sleep(0.02)
    assert queue.depth == 0 and len(written) < 1000
