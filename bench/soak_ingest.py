"""Soak: kill -9 a multi-file `rag ingest` at random points, over and over, into one storage folder.

    .venv/bin/python bench/soak_ingest.py                  # 20 trials (15-20 min on 2 shared cores)
    .venv/bin/python bench/soak_ingest.py --trials 5 --seed 7 --markdown

Each trial adds one PDF and rewrites another, starts `rag ingest DOCS` in a subprocess and sends
it SIGKILL at a random moment: odd trials uniformly over 1.5 times the work time of the last run
that finished (counted from its first progress line, so the seconds spent importing torch are not
the target), even trials uniformly over 1.5 times the stretch from the last embedding bar to the
replacement of the manifest (writing the indexes, the commit), so that some die during the commit.
After each kill the storage folder must hold a loadable index: every retriever kind answers a
retrieve, and every file committed before the trial is still in the manifest and in the basic
index (a file missing there is "lost"). A last run without a kill must then index every PDF.

Not a test (not in CI): it prints a table and writes bench/results/soak_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/pdfs.py builds the PDFs
from common import ROOT, add_run_options, log, machine_state, remove_unless_kept, write_results  # noqa: E402
from ingest_query import render  # noqa: E402

WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lagoon", "meadow", "nectar", "onyx", "prairie", "quartz", "reef", "saffron", "tundra", "umber", "violet",
         "willow", "xenon", "yarrow", "zephyr", "alder", "birch", "cedar", "delta"]
KINDS = ("basic", "sentence_window", "auto_merging")
# Kills fall uniformly in [0, WINDOW x the stretch they aim at, as the last finished run took it]:
# about a third of the runs finish (and commit), the others die anywhere in that stretch.
WINDOW = 1.5
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def write_doc(folder: Path, index: int, version: int = 0) -> str:
    """A 4-page PDF about one made-up word; ``version`` changes its text (a changed file)."""
    from pdfs import make_pdf

    word = WORDS[index % len(WORDS)] + (str(index // len(WORDS)) if index >= len(WORDS) else "")
    pages = [" ".join(f"Section {p}.{i} of the {word} manual, revision {version}: item {i} ships in batch {p}."
                      for i in range(12)) for p in range(4)]
    name = f"doc_{index:02d}_{word}.pdf"
    make_pdf(folder / name, pages)
    return name


def ingest_command(storage: Path, docs: Path) -> list[str]:
    return [sys.executable, "-m", "rag.cli", "--storage-dir", str(storage), "ingest", str(docs)]


def run_ingest(storage: Path, docs: Path, kill_after: float | None = None, aim: str = "work") -> dict[str, Any]:
    """Run one ingest; with ``kill_after``, SIGKILL it that many seconds after a mark on its stderr:
    its first progress line (``aim="work"``) or the end of its last embedding bar (``aim="commit"``:
    what follows is writing the indexes and replacing the manifest)."""
    proc = subprocess.Popen(ingest_command(storage, docs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **CHILD_ENV}, cwd=ROOT)
    started = time.monotonic()
    marks = {"work": threading.Event(), "commit": threading.Event()}
    seen_at: dict[str, float] = {}
    tail: list[str] = []

    def read_stderr():
        recent = ""  # a bar's text can be split between two reads
        for raw in iter(lambda: proc.stderr.read1(4096), b""):
            text = raw.decode(errors="replace")
            tail.append(text)
            recent = (recent + text)[-4000:]
            if "Reading PDFs" in recent and "work" not in seen_at:
                seen_at["work"] = time.monotonic()
                marks["work"].set()
            if re.search(rf"Embedding {KINDS[-1]}: +100%\|", recent) and "commit" not in seen_at:
                seen_at["commit"] = time.monotonic()
                marks["commit"].set()
        for mark in marks.values():
            mark.set()  # the process ended: nothing more to wait for

    def watch_manifest():
        before = manifest_state(storage)
        while proc.poll() is None:
            if manifest_state(storage) != before:
                seen_at["manifest"] = time.monotonic()
                return
            time.sleep(0.01)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    watcher = threading.Thread(target=watch_manifest, daemon=True)
    watcher.start()
    killed = False
    if kill_after is not None:
        marks[aim].wait(timeout=900)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.kill()
            killed = True
    proc.wait()
    ended = time.monotonic()
    reader.join(timeout=10)
    watcher.join(timeout=10)
    phase = "after the commit (clean-up)" if "manifest" in seen_at else last_phase("".join(tail))
    return {"rc": proc.returncode, "killed": killed, "phase": phase, "seconds": ended - started,
            "work_seconds": ended - seen_at.get("work", started),
            "commit_seconds": (seen_at.get("manifest", ended) - seen_at["commit"]) if "commit" in seen_at else None,
            "stderr_tail": "".join(tail)[-1500:]}


def manifest_state(storage: Path) -> tuple[int, int] | None:
    """(inode, mtime) of the manifest: it changes when an ingest commits (the manifest is replaced)."""
    try:
        info = (storage / "manifest.json").stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def last_phase(stderr: str) -> str:
    """The description of the last progress bar on ``stderr`` ("Embedding basic"): where the run was."""
    bars = [line for line in re.split(r"[\r\n]", stderr) if re.search(r"\d+%\|", line)]
    if not bars:
        return "starting"
    name = bars[-1].split(":")[0].strip()
    if "100%|" not in bars[-1]:
        return name
    return "writing indexes / commit" if name == f"Embedding {KINDS[-1]}" else f"after {name}"


def check(storage: Path) -> dict[str, Any]:
    """Whether the index loads and answers (in a fresh RAG object), and which files it holds."""
    from rag import RAG, Config

    try:
        manifest = json.loads((storage / "manifest.json").read_text())
        app = RAG(Config(storage_dir=storage), progress=False)
        for kind in KINDS:
            if not app.retrieve("Which batch ships item 3?", kind):
                return {"ok": False, "error": f"{kind}: no sources", "files": set()}
        indexed = {s.file for s in app.retrieve("manual revision", "basic", top_k=100_000)}
    except Exception as exc:  # anything here is a broken index: count it, say what it was
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300], "files": set()}
    return {"ok": True, "error": None, "files": set(manifest["files"]) & indexed,
            "manifest_files": set(manifest["files"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--start-files", type=int, default=6, help="PDFs ingested before the first trial")
    parser.add_argument("--seed", type=int, default=14)
    add_run_options(parser, "soak_ingest.json")
    args = parser.parse_args()
    os.environ.update(CHILD_ENV)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="rag-soak-", dir=args.tmp))
    docs, storage = tmp / "docs", tmp / "storage"
    state = {"machine_before": machine_state()}
    wall0, cpu0, own0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    names = [write_doc(docs, i) for i in range(args.start_files)]
    first = run_ingest(storage, docs, kill_after=None)
    assert first["rc"] == 0, first["stderr_tail"]
    # How long an ingest takes (one file added, one changed): the windows the kills fall in.
    names.append(write_doc(docs, len(names)))
    write_doc(docs, 0, version=1)
    calibration = run_ingest(storage, docs, kill_after=None)
    assert calibration["rc"] == 0, calibration["stderr_tail"]
    expected = {"work": calibration["work_seconds"], "commit": max(calibration["commit_seconds"] or 1.0, 0.2)}
    log(f"a full ingest: {calibration['seconds']:.1f}s; from its first progress line {expected['work']:.1f}s, "
        f"from its last embedding bar to the manifest's replacement {expected['commit']:.2f}s")

    trials, lost, broken = [], set(), 0
    committed = check(storage)["files"]
    for t in range(args.trials):
        names.append(write_doc(docs, len(names)))
        write_doc(docs, rng.randrange(len(names) - 1), version=t + 2)
        aim = "commit" if t % 2 else "work"  # every other kill aims at the writing and the commit
        kill_after = rng.uniform(0, WINDOW * expected[aim])
        run = run_ingest(storage, docs, kill_after=kill_after, aim=aim)
        if not run["killed"]:
            expected = {"work": run["work_seconds"], "commit": max(run["commit_seconds"] or expected["commit"], 0.2)}
        result = check(storage)
        gone = committed - result["files"] if result["ok"] else set()
        broken += not result["ok"]
        lost |= gone
        outcome = "killed" if run["killed"] else ("finished" if run["rc"] in (0, 1) else f"exit {run['rc']}")
        new_file_in = result["ok"] and names[-1] in result["files"]  # this trial's new PDF: committed?
        trials.append({"trial": t + 1, "aim": aim, "kill_after_s": round(kill_after, 2), "outcome": outcome,
                       "phase": run["phase"], "committed": new_file_in,
                       "loadable": result["ok"], "error": result["error"], "files": len(result["files"]),
                       "lost": sorted(gone)})
        log(f"trial {t + 1}: kill {kill_after:.1f}s after the {aim} mark -> {outcome} ({run['phase']}); "
            f"loadable={result['ok']} "
            f"files={len(result['files'])} lost={sorted(gone)} {result['error'] or ''}")
        if result["ok"]:
            committed = result["files"]
    final = run_ingest(storage, docs, kill_after=None)
    after = check(storage)
    complete = final["rc"] == 0 and after["ok"] and after["files"] == set(names)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    killed = sum(t["outcome"] == "killed" for t in trials)
    own = time.process_time() - own0
    row = [len(trials), killed, len(trials) - killed, broken, len(lost),
           "yes" if complete else "NO", f"{time.monotonic() - wall0:.0f}", f"{cpu:.0f}", f"{own:.0f}"]
    header = ["trials", "killed mid-run", "finished first", "broken indexes", "lost files",
              "final ingest complete", "wall s", "CPU s ingests", "CPU s checks"]
    print(render(f"kill -9 soak: {len(names)} PDFs, one storage folder (seed {args.seed})", header, [row],
                 args.markdown))
    phases: dict[str, list[int]] = {}
    for trial in trials:
        counts = phases.setdefault(trial["phase"] if trial["outcome"] == "killed" else "(finished before the kill)",
                                   [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += trial["committed"]
        counts[2] += not trial["loadable"]
        counts[3] += len(trial["lost"])
    print()
    print(render("where the kills landed (last progress bar)",
                 ["phase", "trials", "new PDF committed", "broken", "lost files"],
                 [[phase, *counts] for phase, counts in phases.items()], args.markdown))
    state.update({"trials": trials, "broken": broken, "lost": sorted(lost), "final_complete": complete,
                  "final_files": len(after["files"]), "pdfs": len(names), "calibration": calibration,
                  "wall_s": time.monotonic() - wall0, "cpu_s_children": cpu, "cpu_s_checks": own, "machine_after": machine_state()})
    write_results(args.json, state)
    remove_unless_kept(tmp, args.keep)
    return 0 if broken == 0 and not lost and complete else 1


if __name__ == "__main__":
    sys.exit(main())
