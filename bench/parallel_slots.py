"""Does decoding two requests together pay on this machine? llama.cpp with 1 slot against 2.

    .venv/bin/python bench/parallel_slots.py [--model qwen2.5-coder-1.5b] [--threads 2] [--requests 6]

Two workloads, each run with 1 slot (requests one after another) and with 2 slots (two client
threads, so llama.cpp batches the two requests' tokens together), on the same loaded weights:

* ``generate``: answer-like requests, a ~500-token prompt of sample text and 64 new tokens
  (greedy, so both settings produce the same tokens);
* ``judge``: judge-like requests, a ~300-token prompt and one token with its top-5 log-probs.

Columns: wall seconds for all requests, CPU seconds of the process (llama.cpp's threads included),
and the 2-slot wall as a share of the 1-slot wall (below 1 means 2 slots pay). Run it with nothing
else on the cores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def prompts(words: int, count: int) -> list[str]:
    text = " ".join((ROOT / "data" / "src" / name).read_text() for name in sorted(
        p.name for p in (ROOT / "data" / "src").glob("*.md"))).split()
    step = max((len(text) - words) // max(count, 1), 1)
    return [" ".join(text[i * step:i * step + words]) for i in range(count)]


def run(engine, requests: list[dict], clients: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda r: engine.chat(**r), requests))
    return time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "parallel_slots.json"))
    args = parser.parse_args()

    from rag.config import Config
    from rag.generation.catalogue import resolve_gguf
    from rag.generation.llamacpp_engine import get_engine

    path = resolve_gguf(args.model, Config().model_cache_dir, fetch=False, progress=False)
    system = {"role": "system", "content": "Answer from the text, briefly."}
    workloads = {
        "generate": [{"messages": [system, {"role": "user", "content": p + "\n\nWhat are the main rules?"}],
                      "max_tokens": 64, "temperature": 0.0} for p in prompts(380, args.requests)],
        "judge": [{"messages": [system, {"role": "user", "content": p + "\n\nIs this about safety? Yes or no."}],
                   "max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 5}
                  for p in prompts(230, 2 * args.requests)],
    }
    rows = []
    for slots in (1, 2):
        engine = get_engine(path, threads=args.threads, context_window=4096, slots=slots)
        engine.chat(**workloads["judge"][0])  # warm-up: weights paged in
        for name, requests in workloads.items():
            wall, cpu = run(engine, requests, clients=slots)
            rows.append({"workload": name, "slots": slots, "requests": len(requests), "wall_s": wall, "cpu_s": cpu})
            log(f"{name}, {slots} slot(s): {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"{'workload':10} {'slots':>5} {'requests':>8} {'wall s':>8} {'CPU s':>8} {'wall vs 1 slot':>15}")
    for row in rows:
        one = next(r for r in rows if r["workload"] == row["workload"] and r["slots"] == 1)
        print(f"{row['workload']:10} {row['slots']:>5} {row['requests']:>8} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} "
              f"{row['wall_s'] / one['wall_s']:>14.2f}x")
    write_results(args.json, {"machine": machine_state(), "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
