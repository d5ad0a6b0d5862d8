"""Ingest throughput of this checkout against an older commit, same PDFs, same machine, same run.

    .venv/bin/python bench/ingest_speed.py [--baseline a74f9b2] [--files 3] [--embedders minilm,minilm-int8]
        [--pdfs FOLDER] [--rounds 1]

The baseline is checked out with ``git worktree`` into a temporary folder and run with this
virtual environment. Each ingest runs in a fresh process into an empty storage folder (one
embedding thread, progress off) and is timed from outside: wall time and the child's CPU time.
Rounds alternate baseline and current so that machine load hits both alike; the table shows the
median per row and the ratio to the baseline (minilm). Default PDFs: the latest SEC 10-Q filings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, sec10q_paths, write_results  # noqa: E402

CHILD = """
import json, sys
from rag.app import RAG
from rag.config import Config
kwargs = json.loads(sys.argv[3])
report = RAG(Config(storage_dir=sys.argv[2], **kwargs), progress=False).ingest(sys.argv[1], progress=False)
print(json.dumps({"embedded": report.embedded, "pages": report.pages}))
"""


def run_ingest(code_root: Path, pdfs: Path, storage: Path, settings: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code_root), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(pdfs), str(storage), json.dumps(settings)],
                          cwd=code_root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({code_root}):\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**out, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="a74f9b2", help="git ref to compare with")
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--pdfs", help="folder of PDFs (default: the latest SEC 10-Q filings)")
    parser.add_argument("--embedders", default="minilm,minilm-int8")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    source = Path(args.pdfs) if args.pdfs else sec10q_paths(None, None)[0]
    work = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    corpus = work / "pdfs"
    corpus.mkdir()
    for pdf in sorted(source.glob("*.pdf"))[-args.files:]:
        shutil.copy(pdf, corpus / pdf.name)
    baseline = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True,
                   capture_output=True)
    rows: dict[str, list[dict]] = {}
    try:
        for round_ in range(args.rounds):
            plan = [(f"baseline {args.baseline} minilm", baseline, {"embed_model": "minilm"})]
            plan += [(f"current {name}", ROOT, {"embed_model": name, "embed_threads": 1}) for name in args.embedders.split(",")]
            for label, code, settings in plan:
                log(f"round {round_ + 1}: {label}")
                storage = work / f"storage-{len(rows)}-{round_}"
                rows.setdefault(label, []).append(run_ingest(code, corpus, storage, settings))
                shutil.rmtree(storage, ignore_errors=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(r["wall_s"] for r in next(iter(rows.values())))
    base_cpu = statistics.median(r["cpu_s"] for r in next(iter(rows.values())))
    print(f"\n{args.files} PDFs, {next(iter(rows.values()))[0]['pages']} pages, {args.rounds} round(s), "
          f"load {machine_state()['loadavg']}\n")
    print("run | nodes embedded | wall s | CPU s | nodes / CPU s | speed-up (wall) | speed-up (CPU)")
    print("--- | --- | --- | --- | --- | --- | ---")
    summary = []
    for label, runs in rows.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        nodes = runs[0]["embedded"]
        summary.append({"run": label, "nodes": nodes, "wall_s": wall, "cpu_s": cpu})
        print(f"{label} | {nodes} | {wall:.1f} | {cpu:.1f} | {nodes / cpu:.1f} | {base / wall:.2f}x | {base_cpu / cpu:.2f}x")
    write_results(ROOT / "bench" / "results" / "ingest_speed.json", {"machine": machine_state(), "rows": summary})


if __name__ == "__main__":
    main()
