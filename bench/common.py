"""Helpers shared by the bench scripts (run as `python bench/NAME.py`, so this imports as `common`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

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
