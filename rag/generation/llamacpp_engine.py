"""llama.cpp in-process: a thin, thread-safe wrapper over ``xllamacpp.Server``.

One engine per (GGUF file, threads, context window) per process; requests and answers are the
OpenAI-shaped dicts of llama.cpp's own server, so callers can treat it like any chat API.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import queue
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from rag.errors import ModelUnavailableError, RagError

# llama.cpp logs every load and request at verbosity 3; at 1 it prints only errors, at -1 nothing.
# Set RAG_LLAMACPP_VERBOSITY=1 (or 3) to see llama.cpp's own words when a model will not load.
_VERBOSITY_ENV = "RAG_LLAMACPP_VERBOSITY"

# llama.cpp keeps the KV state of past prompts in RAM to restore shared prefixes later; its default
# cap is 8 GiB, reached after ~100 judge prompts of 3k tokens with the 1.5B (~29 KB per token).
# Used only when REUSE_PROMPT_CACHE is on.
PROMPT_CACHE_MIB = 1024

_ENGINES: dict[tuple[str, int, int, int, int], "LlamaCppEngine"] = {}
_ENGINES_LOCK = threading.Lock()
_DONE = object()  # end-of-stream marker on a stream's queue


class LlamaCppError(RagError):
    """llama.cpp refused a model or a request."""


class ContextOverflowError(LlamaCppError):
    """The prompt does not fit the context window (a prompt that fits but leaves too little room
    for max_tokens is not an error: the answer stops early with finish_reason "length")."""


def get_engine(gguf_path: str | Path, *, threads: int, context_window: int,
               batch_threads: int | None = None, slots: int = 1) -> "LlamaCppEngine":
    """The process's engine for this file and settings, loaded on first use.

    ``threads`` generate tokens; ``batch_threads`` (default: the same) process the prompt;
    ``slots`` requests are decoded together, each with ``context_window`` tokens.
    """
    path = Path(gguf_path).expanduser().resolve()
    batch_threads = threads if batch_threads is None else batch_threads
    key = (str(path), int(threads), int(batch_threads), int(context_window), int(slots))
    with _ENGINES_LOCK:  # held while loading: two threads asking at once load the weights once
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = LlamaCppEngine(path, threads=threads, batch_threads=batch_threads,
                                                    context_window=context_window, slots=slots)
        return engine


def engine_threads(config: Any) -> dict[str, int]:
    """``threads`` (generation) and ``batch_threads`` (prompt) from ``config``'s settings (0 = auto)."""
    from rag.threads import model_threads, prompt_threads

    return {"threads": model_threads(config.llm_threads), "batch_threads": prompt_threads(config.llm_prompt_threads)}


def engine_for(config: Any, gguf_path: str | Path) -> "LlamaCppEngine":
    """The engine of ``gguf_path`` with ``config``'s threads and window (shared by the generator and judges)."""
    return get_engine(gguf_path, context_window=int(config.context_window), **engine_threads(config))


class LlamaCppEngine:
    """One loaded model. Safe to share between threads: llama.cpp's server queues the requests."""

    def __init__(self, gguf_path: Path, *, threads: int, context_window: int, batch_threads: int | None = None,
                 slots: int = 1):
        try:
            import xllamacpp
        except ImportError as e:
            raise ModelUnavailableError(f"the llama.cpp engine is not installed ({e}): pip install xllamacpp") from e

        self.path = Path(gguf_path)
        self.threads = threads
        self.batch_threads = threads if batch_threads is None else batch_threads
        self.context_window = context_window
        _check_gguf(self.path)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        # One slot by default: two slots decoding together were no faster on 2 cores (generation 1.04x,
        # judge calls 1.02x the wall time of one slot; bench/parallel_slots.py).
        params.n_ctx = context_window * slots  # llama.cpp splits n_ctx between the slots
        params.n_parallel = slots
        params.cpuparams.n_threads = threads  # generation
        params.cpuparams_batch.n_threads = self.batch_threads  # prompt processing
        params.n_threads_http = 2
        params.cache_prompt = REUSE_PROMPT_CACHE
        params.cache_ram_mib = PROMPT_CACHE_MIB if REUSE_PROMPT_CACHE else 0
        params.verbosity = int(os.environ.get(_VERBOSITY_ENV, "-1"))
        # xllamacpp always starts llama.cpp's HTTP server (port 0 = a random TCP port on 127.0.0.1).
        # A host name ending in .sock makes it a Unix socket instead, in a folder only we can read:
        # no TCP port is opened. We use it for /tokenize, which the Python API lacks.
        self._socket_dir = tempfile.mkdtemp(prefix="rag-llamacpp-")
        self._socket = os.path.join(self._socket_dir, "server.sock")
        params.hostnames = [self._socket]
        atexit.register(shutil.rmtree, self._socket_dir, True)
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as e:  # its only message: "Failed to init server, please check the input params."
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            raise LlamaCppError(
                f"llama.cpp could not load {self.path} (truncated, corrupt or unsupported GGUF, or too large a "
                f"context_window={context_window}); set {_VERBOSITY_ENV}=1 to see its error"
            ) from e

    # -- chat -------------------------------------------------------------------------------------

    def chat(self, messages: list[dict], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None,
             logprobs: bool = False, top_logprobs: int = 0, seed: int = 0) -> dict:
        """One chat completion: ``choices[0].message.content``, ``finish_reason``, ``usage``, ``timings``."""
        body = _body(messages, max_tokens, temperature, stop, logprobs, top_logprobs, seed, stream=False)
        return self._call(self._server.handle_chat_completions, body)

    def stream_chat(self, messages: list[dict], *, max_tokens: int, temperature: float = 0.0,
                    stop: list[str] | None = None, logprobs: bool = False, top_logprobs: int = 0,
                    seed: int = 0) -> Iterator[dict]:
        """Chunk dicts as llama.cpp produces them; the last carries ``finish_reason`` and ``usage``.

        Closing the iterator early stops the generation at the next token.
        """
        body = _body(messages, max_tokens, temperature, stop, logprobs, top_logprobs, seed, stream=True)
        chunks: queue.Queue = queue.Queue()
        stop_now = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return stop_now.is_set()  # True asks llama.cpp to stop; it must not raise (errors are swallowed)

        def run() -> None:
            try:  # the call blocks until the end and releases the GIL, so chunks arrive while it runs
                self._call(self._server.handle_chat_completions, body, on_chunk)
            except Exception as e:  # handed to the consumer's thread
                chunks.put(e)
            finally:
                chunks.put(_DONE)

        threading.Thread(target=run, name="llamacpp-stream", daemon=True).start()
        held = None  # the finish_reason chunk, held back until the usage chunk that follows it
        try:
            while (item := chunks.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, dict) and "error" in item:
                    raise _error(item["error"])
                if not item.get("choices") and held is not None:  # usage-only chunk: merge it
                    held = {**held, **{k: v for k, v in item.items() if k not in ("choices", "id", "object")}}
                    continue
                if held is not None:
                    yield held
                    held = None
                if item.get("choices") and item["choices"][0].get("finish_reason"):
                    held = item
                else:
                    yield item
            if held is not None:
                yield held
        finally:
            stop_now.set()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer, without BOS/EOS."""
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[int]:
        """The token ids of ``text`` by the model's own tokenizer, without BOS/EOS."""
        status, reply = self._http("/tokenize", {"content": text, "add_special": False})
        if status != 200 or "tokens" not in reply:
            raise _error(reply.get("error", reply))
        return [int(t) for t in reply["tokens"]]

    def render(self, messages: list[dict]) -> str:
        """``messages`` as the prompt text the model reads (its chat template applied, ready for the answer)."""
        status, reply = self._http("/apply-template", {"messages": messages})
        if status != 200 or "prompt" not in reply:
            raise _error(reply.get("error", reply))
        return reply["prompt"]

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, handler: Callable, body: dict, callback: Callable | None = None) -> Any:
        try:
            result = handler(body) if callback is None else handler(body, callback)
        except (ValueError, RuntimeError, TypeError) as e:  # malformed requests raise ValueError
            raise LlamaCppError(f"llama.cpp rejected the request: {_one_line(e)}") from e
        if isinstance(result, dict) and "error" in result:
            raise _error(result["error"])
        return result

    def _http(self, route: str, payload: dict) -> tuple[int, dict]:
        connection = _UnixHTTPConnection(self._socket)
        try:
            connection.request("POST", route, json.dumps(payload), {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise LlamaCppError(f"llama.cpp {route} failed: {_one_line(e)}") from e
        finally:
            connection.close()

    def __repr__(self) -> str:
        return f"LlamaCppEngine({self.path.name!r}, threads={self.threads}, context_window={self.context_window})"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


# Reusing the KV cache of a shared prompt prefix makes llama.cpp read the rest in batches of
# another shape, and its logits are then not bit-for-bit those of a fresh read: the same prompt
# could sample another answer depending on what was asked before it. Every request reads its
# whole prompt, so a run repeats exactly (a few hundred tokens of system prompt re-read per call).
# Off in the request alone was not enough: with the server's RAM prompt cache on, a generation
# after a judge's logprobs call still changed (the sample's sick-leave answer, 10 vs 25 days), so
# the server-level cache is off too, and an answer depends only on its own prompt.
REUSE_PROMPT_CACHE = False


def _body(messages: list[dict], max_tokens: int, temperature: float, stop: list[str] | None, logprobs: bool,
          top_logprobs: int, seed: int, *, stream: bool) -> dict:
    if max_tokens < 1:  # llama.cpp reads 0 as "one token" and -1 as "until the window is full"
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                            "seed": seed, "cache_prompt": REUSE_PROMPT_CACHE}
    if stop:
        body["stop"] = list(stop)
    if logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = top_logprobs
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _error(error: Any) -> LlamaCppError:
    if isinstance(error, dict):
        if error.get("type") == "exceed_context_size_error":
            return ContextOverflowError(
                f"the prompt has {error.get('n_prompt_tokens')} tokens, more than the context window of "
                f"{error.get('n_ctx')}: retrieve fewer or shorter chunks, or raise context_window"
            )
        return LlamaCppError(f"llama.cpp: {_one_line(error.get('message', error))}")
    return LlamaCppError(f"llama.cpp: {_one_line(error)}")


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())[:300]


def _check_gguf(path: Path) -> None:
    """The clear cases, named before llama.cpp's silent 'Failed to init server'."""
    if not path.is_file():
        raise ModelUnavailableError(f"GGUF file not found: {path}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LlamaCppError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)")
