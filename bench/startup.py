"""Start-up of the CLI: wall and CPU seconds of `rag retrieve`, and the first streamed answer byte of
`rag query`, each run in a fresh process against an index of the sample PDFs.

    .venv/bin/python bench/startup.py [--runs 3] [--storage DIR] [--retriever basic]

"warm" means the operating system's file cache already holds the code and the models (one untimed
run first); no process state is kept between runs. CPU seconds are the child's user + system time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402

QUESTION = "How many days of parental leave do employees get?"


def timed(command: list[str], env: dict) -> dict:
    """Run ``command``; wall seconds to exit and to the first byte on stdout, and the child's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    first = process.stdout.read(1)
    first_s = time.perf_counter() - start
    process.stdout.read()
    code = process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return {"wall_s": time.perf_counter() - start, "first_byte_s": first_s if first else None,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storage", help="an index of data/ to reuse (default: a fresh one)")
    parser.add_argument("--retriever", default="basic")
    args = parser.parse_args()
    storage = Path(args.storage or tempfile.mkdtemp(prefix="rag-startup-"))
    env = {**os.environ, "RAG_STORAGE_DIR": str(storage), "HF_HUB_OFFLINE": "1"}
    rag = [sys.executable, "-m", "rag.cli"]
    subprocess.run([*rag, "ingest", str(ROOT / "data")], env=env, check=True, capture_output=True)
    commands = {"rag --help": [*rag, "--help"],
                "rag retrieve": [*rag, "retrieve", QUESTION, "-r", args.retriever],
                "rag query (first answer byte)": [*rag, "query", QUESTION, "-r", args.retriever]}
    rows = []
    for name, command in commands.items():
        log(f"{name}: 1 untimed + {args.runs} runs")
        timed(command, env)
        runs = [timed(command, env) for _ in range(args.runs)]
        first = [r["first_byte_s"] for r in runs if r["first_byte_s"] is not None]
        rows.append({"command": name, "runs": len(runs),
                     "wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                     "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
                     "first_byte_s": round(statistics.median(first), 2) if first else None})
    state = machine_state()
    print(f"\nmedian of {args.runs} warm runs; load average {state['loadavg']}\n")
    print("command | wall s | CPU s | first stdout byte s")
    print("--- | --- | --- | ---")
    for r in rows:
        print(f"{r['command']} | {r['wall_s']} | {r['cpu_s']} | {r['first_byte_s'] or ''}")
    write_results(ROOT / "bench" / "results" / "startup.json", {"machine": state, "rows": rows})


if __name__ == "__main__":
    main()
