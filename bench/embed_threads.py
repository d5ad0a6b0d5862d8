"""Embedding threads, 1 vs 2, on this machine as it is and with two CPU burners beside it.

    .venv/bin/python bench/embed_threads.py [--texts 256] [--embedders minilm,minilm-int8]

Each cell runs in a fresh process (torch's thread pool is per process): it loads the embedder
with ``embed_threads=N``, embeds one warm-up batch, then ``--texts`` texts of ~60 words in
batches of 16, and reports wall time, CPU time and texts per wall second. "busy" adds two
processes that spin on the CPU for the whole cell, like other jobs on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402

CHILD = """
import json, sys, time
from rag.config import Config
from rag.embedding import embed_texts
name, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = Config(embed_model=name, embed_threads=threads)
texts = [f"Item {i}: the quarterly report lists revenue, operating costs and the outlook for the next "
         f"period, with figures for each region and a note on currency effects and supply." for i in range(n)]
embed_texts(config, texts[:16])
start, cpu = time.perf_counter(), time.process_time()
for i in range(0, n, 16):
    embed_texts(config, texts[i:i + 16])
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def burn() -> None:
    while True:
        pass


def cell(name: str, threads: int, texts: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", CHILD, name, str(threads), str(texts)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--embedders", default="minilm,minilm-int8")
    args = parser.parse_args()
    rows = []
    for load in ("as is", "busy"):
        burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(2 if load == "busy" else 0)]
        for b in burners:
            b.start()
        try:
            for name in args.embedders.split(","):
                for threads in (1, 2):
                    log(f"{load}: {name}, {threads} thread(s)")
                    r = cell(name, threads, args.texts)
                    rows.append({"load": load, "embedder": name, "threads": threads, "wall_s": round(r["wall"], 2),
                                 "cpu_s": round(r["cpu"], 2), "texts_per_s": round(args.texts / r["wall"], 1)})
        finally:
            for b in burners:
                b.terminate()
    print(f"\n{args.texts} texts, load before: {machine_state()['loadavg']}\n")
    print("machine | embedder | threads | wall s | CPU s | texts / s")
    print("--- | --- | --- | --- | --- | ---")
    for r in rows:
        print(f"{r['load']} | {r['embedder']} | {r['threads']} | {r['wall_s']} | {r['cpu_s']} | {r['texts_per_s']}")
    write_results(ROOT / "bench" / "results" / "embed_threads.json", {"machine": machine_state(), "rows": rows})


if __name__ == "__main__":
    main()
