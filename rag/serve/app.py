"""The HTTP routes of ``rag serve`` (Starlette): an OpenAI-compatible chat API, retrieval, feedback,
health and metrics, and the chat page at ``/``.

Every error is one JSON object in OpenAI's shape, ``{"error": {"message", "type", "code"}}``, with
no traceback and no file system path in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rag.errors import InputError, RagError
from rag.evaluation.labels import Label, LabelStore
from rag.retrieval import RETRIEVER_KINDS
from rag.serve.auth import ApiKeys, digest, key_of
from rag.serve.metrics import Metrics
from rag.serve.pipeline import Answer, Busy, Pipeline
from rag.types import QueryResult, Source

log = logging.getLogger("rag.serve")

STATIC = Path(__file__).parent / "static"
MODEL_PREFIX = "rag-"  # model "rag-sentence_window" answers with the sentence_window retriever
FOOTER = "\n\nSources:\n"  # where the citations start in an answer's text (stripped again from history)
PROTECTED = ("/v1/", "/metrics")  # the rest (the page, its files, /healthz) is open: it holds no data
ROUTES = ("/", "/healthz", "/metrics", "/v1/models", "/v1/retrieve", "/v1/chat/completions", "/v1/feedback")
PATH = re.compile(r"(?<![\w:/])(?:[A-Za-z]:)?[/\\](?:[\w.~-]+[/\\])+[\w.~-]*")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 256 * 1024
    max_question_chars: int = 4000
    max_messages: int = 64
    max_comment_chars: int = 2000
    recent_answers: int = 2000  # answers kept in memory for feedback that names them by id


class Problem(Exception):
    """An error response: HTTP status, a one-line message, OpenAI's error type and code."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.headers = status, message, kind, code, headers or {}

    def body(self) -> dict[str, Any]:
        return {"message": scrub(self.message), "type": self.kind, "code": self.code}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.body()}, status_code=self.status, headers=self.headers)


def scrub(message: str) -> str:
    """A message as a client may see it: one line, file system paths replaced."""
    return PATH.sub("<path>", " ".join(str(message).split()))[:500]


def problem_of(exc: BaseException) -> Problem:
    """What a client is told about a failure; the details go to the server's log only."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, Busy):
        return Problem(429, f"The server is busy ({exc}): retry after {exc.retry_after} s.", "rate_limit_error",
                       "queue_full", {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, InputError):
        return Problem(422, str(exc), code="invalid_value")
    if isinstance(exc, RagError):
        log.error("request failed: %s", exc)
        return Problem(503, f"The index or the model failed ({type(exc).__name__}); the server log has the "
                       "details.", "server_error", "unavailable")
    log.error("request failed", exc_info=exc)
    return Problem(500, "Internal error; the server log has the details.", "server_error", "internal_error")


class Service:
    """The routes' shared state: the pipeline, keys, limits, labels, metrics and recent answers."""

    def __init__(self, pipeline: Pipeline, keys: ApiKeys, labels: LabelStore, limits: Limits = Limits(),
                 metrics: Metrics | None = None, reload_interval_s: float = 2.0):
        self.pipeline, self.keys, self.labels, self.limits = pipeline, keys, labels, limits
        self.metrics = metrics or Metrics()
        self.reload_interval_s = reload_interval_s
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.metrics.gauges["rag_queue_depth_model"] = lambda: pipeline.model_queue.depth
        self.metrics.gauges["rag_queue_depth_retrieve"] = lambda: pipeline.retrieve_queue.depth

    def remember(self, answer_id: str, record: dict[str, Any]) -> None:
        with self._recent_lock:
            self.recent[answer_id] = record
            while len(self.recent) > self.limits.recent_answers:
                self.recent.popitem(last=False)

    def recalled(self, answer_id: str) -> dict[str, Any] | None:
        with self._recent_lock:
            return self.recent.get(answer_id)


# ---------------------------------------------------------------- request parsing

async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The body as a JSON object; 413 past the size limit (counted as it arrives, whatever the headers say)."""
    too_large = Problem(413, f"The request body is larger than {limits.max_body_bytes} bytes.", code="body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_large
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise Problem(422, "The request body must be a JSON object.", code="invalid_value")
    return data


def question_of(text: Any, limits: Limits, field: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Problem(422, f"{field}: the question is empty: ask something.", code="empty_question")
    if len(text) > limits.max_question_chars:
        raise Problem(422, f"{field}: the question is longer than {limits.max_question_chars} characters.",
                      code="question_too_long")
    return text.strip()


def content_of(message: Any) -> tuple[str, str]:
    """(role, text) of one chat message; text parts of a list content are joined."""
    if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
        raise Problem(422, "messages: each message needs a role (system, user or assistant) and a content.")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content is not None and not isinstance(content, str):
        raise Problem(422, "messages: a content must be a string or a list of text parts.")
    return message["role"], content or ""


def conversation(messages: Any, limits: Limits) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the earlier (question, answer) pairs. System messages
    are ignored: the answer prompt is the pipeline's own."""
    if not isinstance(messages, list) or not messages:
        raise Problem(422, "messages: give a list that ends with the user's question.")
    if len(messages) > limits.max_messages:
        raise Problem(422, f"messages: at most {limits.max_messages} messages.", code="too_many_messages")
    parsed = [content_of(m) for m in messages]
    if parsed[-1][0] != "user":
        raise Problem(422, "messages: the last message must be the user's question.")
    history, asked = [], None
    for role, text in parsed[:-1]:
        if role == "user":
            asked = text
        elif role == "assistant" and asked is not None:
            history.append((asked, text.split(FOOTER)[0].strip()))  # our citation footer is not the answer
            asked = None
    return question_of(parsed[-1][1], limits, "messages"), history


def spec_of(service: Service, model: Any, default: str | None = None):
    model = model if model is not None else default
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIX):
        raise Problem(404, f"Unknown model {model!r}: use one of {', '.join(model_names())} (GET /v1/models).",
                      code="model_not_found")
    try:
        return service.pipeline.spec(model[len(MODEL_PREFIX):])
    except RagError as exc:
        raise Problem(404, f"Unknown model {model!r}: {exc}", code="model_not_found") from None


def model_names() -> list[str]:
    return [MODEL_PREFIX + kind for kind in RETRIEVER_KINDS.names()]


def source_json(index: int, source: Source) -> dict[str, Any]:
    return {"index": index, "file": source.file, "page": source.page, "page_end": source.page_end,
            "score": source.score, "citation": source.citation, "text": source.text}


def footer(result: QueryResult) -> str:
    """The sources as citations at the end of the answer's text."""
    if not result.sources:
        return ""
    return FOOTER + "\n".join(f"[{i}] {s.citation}" for i, s in enumerate(result.sources, start=1))


# ---------------------------------------------------------------- routes

async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    pipeline = service.pipeline
    return JSONResponse({"status": "ok", "index_version": pipeline.loaded.version, "reloads": pipeline.reloads,
                         "queue": {"model": pipeline.model_queue.depth, "retrieve": pipeline.retrieve_queue.depth},
                         "api_keys": service.keys.required})


async def metrics(request: Request) -> Response:
    return PlainTextResponse(request.app.state.service.metrics.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                                     "owned_by": "rag-pdf"} for name in model_names()]})


async def retrieve(request: Request) -> Response:
    service: Service = request.app.state.service
    body = await read_json(request, service.limits)
    spec = spec_of(service, body.get("model"), default=model_names()[0])
    question = question_of(body.get("question"), service.limits, "question")
    future = service.pipeline.retrieve_queue.submit(lambda: service.pipeline.retrieve(question, spec))
    sources = await asyncio.wrap_future(future)
    return JSONResponse({"object": "list", "model": MODEL_PREFIX + spec.kind, "retriever": spec.name,
                         "data": [source_json(i, s) for i, s in enumerate(sources, start=1)]})


async def chat_completions(request: Request) -> Response:
    service: Service = request.app.state.service
    body = await read_json(request, service.limits)
    model = body.get("model")
    spec = spec_of(service, model)
    question, history = conversation(body.get("messages"), service.limits)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    answer_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    cancel = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server stopped): nobody is listening
            cancel.set()

    def job() -> None:
        try:
            put("done", service.pipeline.answer(question, history, spec, lambda text: put("text", text), cancel.is_set))
        except Exception as exc:  # handed to the request, which tells the client
            put("error", exc)

    service.pipeline.model_queue.submit(job)  # Busy (a 429) here, before any byte is sent

    def finished(answer: Answer) -> tuple[QueryResult, dict[str, Any]]:
        result = answer.result
        service.metrics.count_tokens(result.usage.get("prompt_tokens", 0), result.usage.get("completion_tokens", 0))
        service.remember(answer_id, {"question": question, "answer": result.answer, "retriever": result.retriever,
                                     "contexts": [s.text for s in result.sources]})
        extra = {"sources": [source_json(i, s) for i, s in enumerate(result.sources, start=1)],
                 "standalone_question": answer.standalone, "retriever": result.retriever}
        return result, extra

    def usage(result: QueryResult) -> dict[str, int]:
        prompt, completion = result.usage.get("prompt_tokens", 0), result.usage.get("completion_tokens", 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    if not stream:
        try:
            kind, value = await events.get()
            while kind == "text":  # the whole answer comes in the result: the pieces are not needed
                kind, value = await events.get()
        finally:
            cancel.set()  # when the client left early, the model stops at its next token
        if kind == "error":
            raise value
        result, extra = finished(value)
        message = {"role": "assistant", "content": result.answer + footer(result)}
        return JSONResponse({"id": answer_id, "object": "chat.completion", "created": created, "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason or "stop"}],
                             "usage": usage(result), **extra})

    head = {"id": answer_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def sse(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra})

    async def events_as_sse():
        streamed = ""
        try:
            yield chunk({"role": "assistant", "content": ""})
            while True:
                kind, value = await events.get()
                if kind == "text":
                    streamed += value
                    yield chunk({"content": value})
                    continue
                if kind == "error":
                    problem = problem_of(value)
                    yield sse({"error": problem.body()})
                    return
                result, extra = finished(value)
                tail = (result.answer if not streamed.strip() else "") + footer(result)
                if tail:
                    yield chunk({"content": tail})
                yield chunk({}, result.finish_reason or "stop", **extra)
                if include_usage:  # OpenAI's last chunk: no choices, the usage
                    yield sse({**head, "choices": [], "usage": usage(result)})
                yield "data: [DONE]\n\n"
                return
        finally:
            cancel.set()  # the client left (or all is sent): the model stops at its next token

    return StreamingResponse(events_as_sse(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def feedback(request: Request) -> Response:
    service: Service = request.app.state.service
    limits = service.limits
    body = await read_json(request, limits)
    rating = body.get("rating")
    if rating not in ("up", "down"):
        raise Problem(422, "rating: give \"up\" or \"down\".", code="invalid_rating")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > limits.max_comment_chars):
        raise Problem(422, f"comment: a string of at most {limits.max_comment_chars} characters.")
    answer_id = body.get("id")
    record = service.recalled(answer_id) if isinstance(answer_id, str) else None
    if record is None:  # an answer this server no longer holds: the client must say what it rated
        if not isinstance(body.get("answer"), str):
            raise Problem(404, f"Unknown answer id {answer_id!r}: give the id of a recent answer, or its "
                          "question and answer.", code="answer_not_found")
        record = {"question": question_of(body.get("question"), limits, "question"), "answer": body["answer"],
                  "retriever": None, "contexts": []}
    key = key_of(request.headers)
    label = Label(metric="answer", value=1 if rating == "up" else 0, question=record["question"],
                  answer=record["answer"], contexts=record["contexts"], retriever=record["retriever"],
                  record_id=answer_id if isinstance(answer_id, str) else None, source="feedback",
                  annotator=f"key:{digest(key).hex()[:12]}" if key and service.keys.required else None,
                  comment=comment or None)
    label_id = await asyncio.get_running_loop().run_in_executor(None, service.labels.add, label)
    return JSONResponse({"id": label_id, "object": "feedback", "answer_id": label.record_id, "rating": rating},
                        status_code=201)


# ---------------------------------------------------------------- the application

class Guard:
    """ASGI middleware: the API key check, and every request timed and counted for /metrics."""

    def __init__(self, app: Any, service: Service):
        self.app, self.service = app, service

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, started, status = scope["path"], time.perf_counter(), [0]  # 0: no response started yet
        route = path if path in ROUTES else ("/static" if path.startswith("/static/") else "other")

        async def counted_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if path.startswith(PROTECTED) and not self.service.keys.accepts(key_of(_headers(scope))):
                problem = Problem(401, "Missing or wrong API key: send it as 'Authorization: Bearer KEY'.",
                                  "authentication_error", "invalid_api_key", {"WWW-Authenticate": "Bearer"})
                return await problem.response()(scope, receive, counted_send)
            await self.app(scope, receive, counted_send)
        except Exception as exc:  # not one of ours: answered here, so no server prints a trace to the client
            if status[0]:
                raise  # a stream broke half-way: nothing more can be said to this client
            await problem_of(exc).response()(scope, receive, counted_send)
        finally:
            self.service.metrics.observe(route, scope["method"], status[0] or 500, time.perf_counter() - started)


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _problem(request: Request, exc: Exception) -> Response:
    problem = problem_of(exc)
    if problem.status == 429:
        request.app.state.service.metrics.count_rejected(getattr(exc, "queue", "?"))
    return problem.response()


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return Problem(status, f"No route {request.method} {request.url.path}.", code="not_found").response()


def create_app(service: Service) -> Starlette:
    async def watch_index() -> None:
        """Reload the index after an ingest commits: a look at the manifest every few seconds."""
        while True:
            await asyncio.sleep(service.reload_interval_s)
            try:
                if await asyncio.to_thread(service.pipeline.reload_if_changed):
                    service.metrics.count_reload()
            except Exception as exc:  # a half-finished ingest or a damaged index: keep serving the old one
                log.warning("index reload failed, the loaded index stays: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        watcher = asyncio.create_task(watch_index())
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.to_thread(service.pipeline.shutdown)  # the jobs in flight finish first

    app = Starlette(
        routes=[Route("/", page), Route("/healthz", healthz), Route("/metrics", metrics),
                Route("/v1/models", models), Route("/v1/retrieve", retrieve, methods=["POST"]),
                Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                Route("/v1/feedback", feedback, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC), name="static")],
        exception_handlers={Problem: _problem, Busy: _problem, RagError: _problem, 404: _not_found,
                            405: _not_found},
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(Guard, service=service)
    return app
