"""Helpers shared by the bench scripts (run as `python bench/NAME.py`, so this imports as `common`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benches run as scripts from a checkout: import rag from it

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_state() -> dict[str, Any]:
    """Load average and uptime: timings on a shared machine mean little without them."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = ""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime,
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def sec10q_paths(pdfs: str | None, questions: str | None) -> tuple[Path, Path]:
    """The SEC 10-Q PDF folder and questions.csv: explicit paths, else $RAG_DATASETS, else ../shared/datasets."""
    base = Path(os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets")
    folder = base / "sec10q" if (base / "sec10q").is_dir() else base
    pdf_dir = Path(pdfs) if pdfs else (folder / "pdfs" if (folder / "pdfs").is_dir() else folder)
    if questions:
        csv = Path(questions)
    elif pdfs and (Path(pdfs).parent / "questions.csv").is_file():
        csv = Path(pdfs).parent / "questions.csv"
    else:
        csv = folder / "questions.csv"
    return pdf_dir, csv


def ingest_summary(report: Any) -> dict[str, Any]:
    return {"pages": report.pages, "embedded": report.embedded, "added": len(report.added),
            "skipped": len(report.skipped), "seconds": round(report.seconds, 2)}


def write_results(path: str | Path, data: dict[str, Any]) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=str))
    log(f"wrote {path}")


def remove_unless_kept(folder: Path, keep: bool) -> None:
    import shutil

    if keep:
        log(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


def add_run_options(parser: Any, results_name: str) -> None:
    """The options every end-to-end bench shares: threads, output format, result file, temp folder."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / results_name),
                        help=f"where to write the numbers (default bench/results/{results_name})")
    parser.add_argument("--tmp", help="parent folder for the temporary PDFs and storage (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
