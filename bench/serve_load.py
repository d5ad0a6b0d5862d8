"""Load on `rag serve`: concurrent clients against POST /v1/retrieve and streaming chat completions
for a fixed time; requests, 429s, errors and p50/p95 latency per endpoint, printed as a table.

    .venv/bin/python bench/serve_load.py [--duration 300] [--retrieve-clients 16] [--chat-clients 4]
                                         [--storage DIR] [--llm-model NAME] [--max-new-tokens N]

The server is started as users start it (`rag serve` on 127.0.0.1, with an API key) over DIR, or over
a fresh index of the sample PDFs. Each client sends its next request as soon as the last one ends;
at the end no new request starts and those in flight are waited for. A 429 is the documented answer
of a full queue (the client waits Retry-After, as asked); anything else that is not a 200 is an error.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the server launcher of the tests
from common import ROOT, log, machine_state, write_results  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval_questions" / "sample.jsonl").read_text().splitlines()
             if line.strip()]


class Tally:
    """Outcomes of one endpoint's requests: latencies of the 200s, counts of 429s and errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: list[float] = []
        self.first_token: list[float] = []
        self.rejected = 0
        self.errors: list[str] = []
        self.last_ok = 0.0  # monotonic time of the last 200: the rate is over the time the endpoint worked

    def row(self, name: str, clients: int, started: float) -> list[str]:
        def pct(values: list[float], q: float) -> str:
            if not values:
                return "-"
            return f"{statistics.quantiles(values, n=100, method='inclusive')[q - 1]:.2f}" if len(values) > 1 \
                else f"{values[0]:.2f}"

        ok = len(self.seconds)
        return [name, str(clients), str(ok + self.rejected + len(self.errors)), str(ok), str(self.rejected),
                str(len(self.errors)), pct(self.seconds, 50), pct(self.seconds, 95), pct(self.first_token, 50),
                pct(self.first_token, 95), f"{ok / (self.last_ok - started):.2f}" if ok else "-"]


def questions_until(until: float, offset: int):
    """The sample questions in turn, from ``offset``, until the monotonic clock reaches ``until``."""
    i = offset
    while time.monotonic() < until:
        yield QUESTIONS[i % len(QUESTIONS)]
        i += 1


def retrieve_client(client, url: str, tally: Tally, until: float, offset: int) -> None:
    for question in questions_until(until, offset):
        started = time.perf_counter()
        try:
            response = client.post(url + "/v1/retrieve", json={"question": question, "model": "rag-basic"})
        except Exception as exc:  # a broken connection is an error of the server
            with tally.lock:
                tally.errors.append(type(exc).__name__)
            continue
        record(tally, response, time.perf_counter() - started)


def chat_client(client, url: str, tally: Tally, until: float, offset: int) -> None:
    for question in questions_until(until, offset):
        started = time.perf_counter()
        first = None
        try:
            body = {"model": "rag-basic", "stream": True, "messages": [{"role": "user", "content": question}]}
            with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    record(tally, response, time.perf_counter() - started)
                    continue
                done = False
                for line in response.iter_lines():
                    if first is None and '"content": "' in line and '"content": ""' not in line:
                        first = time.perf_counter() - started
                    if line.startswith("data: {\"error\""):
                        raise RuntimeError(line[6:200])
                    done = done or line == "data: [DONE]"
                if not done:
                    raise RuntimeError("the stream ended without [DONE]")
        except Exception as exc:
            with tally.lock:
                tally.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        with tally.lock:
            tally.seconds.append(time.perf_counter() - started)
            tally.last_ok = time.monotonic()
            if first is not None:
                tally.first_token.append(first)


def record(tally: Tally, response, seconds: float) -> None:
    with tally.lock:
        if response.status_code == 200:
            tally.seconds.append(seconds)
            tally.last_ok = time.monotonic()
        elif response.status_code == 429:
            tally.rejected += 1
        else:
            tally.errors.append(f"HTTP {response.status_code}: {response.text[:160]}")
    if response.status_code == 429:
        time.sleep(float(response.headers.get("retry-after", "1")))


def prepared_storage(storage: str | None, llm_model: str | None) -> Path:
    if storage:
        return Path(storage)
    from rag import RAG, Config

    folder = Path(tempfile.mkdtemp(prefix="serve-load-")) / "storage"
    log(f"indexing the sample PDFs into {folder}")
    RAG(Config(storage_dir=folder, llm_model=llm_model), progress=False).ingest(ROOT / "data", progress=False)
    return folder


def main() -> None:
    import httpx
    from serve_process import free_port, start_server, stop_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument("--retrieve-clients", type=int, default=16)
    parser.add_argument("--chat-clients", type=int, default=4)
    parser.add_argument("--storage", help="an index to serve (default: the sample PDFs, indexed now)")
    parser.add_argument("--llm-model", help="the generator (default: the configured one)")
    parser.add_argument("--max-new-tokens", type=int, help="answer length cap (default: the configured one)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "serve_load.json"))
    args = parser.parse_args()
    if args.duration <= 0:
        parser.error("--duration: give a number of seconds above 0")

    storage = prepared_storage(args.storage, args.llm_model)
    key = secrets.token_urlsafe(24)
    env = {"RAG_API_KEYS": key, **({"RAG_MAX_NEW_TOKENS": str(args.max_new_tokens)} if args.max_new_tokens else {})}
    from rag import Config
    from rag.generation import model_name

    model = args.llm_model or model_name(Config(storage_dir=storage))
    log(f"starting rag serve over {storage} with {model}")
    process, url = start_server(storage, free_port(), env, model=model)
    tallies = {"retrieve": Tally(), "chat (stream)": Tally()}
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(headers=headers, timeout=600,
                          limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as client:
            started = time.monotonic()
            until = started + args.duration
            threads = [threading.Thread(target=retrieve_client, args=(client, url, tallies["retrieve"], until, i))
                       for i in range(args.retrieve_clients)]
            threads += [threading.Thread(target=chat_client, args=(client, url, tallies["chat (stream)"], until, i))
                        for i in range(args.chat_clients)]
            log(f"{args.retrieve_clients} retrieve and {args.chat_clients} chat clients for {args.duration:.0f} s")
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall_s = time.monotonic() - started
            metrics = client.get(url + "/metrics").text
    finally:
        code = stop_server(process)
    headers = ["endpoint", "clients", "requests", "200", "429", "errors", "p50 s", "p95 s", "first token p50 s",
               "first token p95 s", "ok/s"]
    rows = [tallies["retrieve"].row("POST /v1/retrieve", args.retrieve_clients, started),
            tallies["chat (stream)"].row("POST /v1/chat/completions (stream)", args.chat_clients, started)]
    print(f"\nrag serve under load: {wall_s:.0f} s ({args.duration:.0f} s of new requests, then those in flight), "
          f"generator {model}; server exit code {code}")
    print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name, tally in tallies.items():
        for error in sorted(set(tally.errors))[:5]:
            print(f"  {name} error: {error}")
    tokens = [line for line in metrics.splitlines() if line.startswith("rag_tokens_total")]
    write_results(args.json, {"machine": machine_state(), "duration_s": args.duration, "wall_s": wall_s,
                              "model": model, "headers": headers, "rows": rows, "server_exit_code": code,
                              "tokens": tokens, "errors": {n: t.errors[:20] for n, t in tallies.items()}})


if __name__ == "__main__":
    main()
