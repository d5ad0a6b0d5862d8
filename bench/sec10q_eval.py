"""End-to-end evaluation on SEC 10-Q filings: RAG triad, answer correctness and latency per retriever.

    .venv/bin/python bench/sec10q_eval.py [--files N | --pdf NAME ...] [--questions N] [--markdown]

What it does:

* reads ``sec10q/questions.csv`` (columns ``Question``, ``Source Docs`` -- a glob such as
  ``*2023 Q3 NVDA*`` or ``*AAPL*`` --, ``Question Type``, ``Answer``) and the PDFs in
  ``sec10q/pdfs/`` under ``../shared/datasets`` (or ``$RAG_DATASETS``, or ``--pdfs`` /
  ``--csv``);
* picks ``--files`` filings (default 2): the ones with the most *single-document* questions (a
  question whose glob matches exactly one filing of the whole set), so the default pair is the
  one with the most single-doc questions; or exactly the filings named with ``--pdf``;
* copies them into a temporary folder and ingests them with
  ``RAG(Config(storage_dir=tmp, max_new_tokens=96)).ingest(folder)`` (96 new tokens bound the
  local LLM's generation time);
* takes the first ``--questions`` questions (default 3, CSV order) whose Source Docs glob
  matches only filings that were ingested, with their reference answers, and runs
  ``app.evaluate(questions, retrievers=[basic, sentence_window, auto_merging], judge="local")``:
  every question is answered by the bundled local LLM with each retriever and judged by the
  offline local judge (context relevance, groundedness, answer relevance; triad = their mean),
  ``correctness`` = key-fact correctness against the reference answer (rag.evaluation.key_facts:
  1.0 when its numbers, money, dates, codes, people and roles are all stated, at most 0.3 when
  one is missing or contradicted, token recall when it has none), ``token_recall`` beside it;
* there are no evidence pages in this set, so the hit rate is document-level and computed here
  from each row's sources: ``doc_hit`` = 1 if any returned source comes from a filing matching
  the question's Source Docs glob, ``doc_precision`` = share of returned sources that do.

With 3 questions the means are anecdotes, not a ranking; raise ``--questions`` for more (each
answer costs ~20-60 s of local generation on 2 shared cores).

The leaderboard goes to stdout (aligned text, or Markdown with ``--markdown``); all numbers,
per-question rows included, also go to bench/results/sec10q_eval.json (git-ignored). Progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, add_run_options, ingest_summary, log, machine_state, remove_unless_kept, sec10q_paths, write_results  # noqa: E402,E501
from rag.retrieval import RETRIEVER_KINDS  # noqa: E402

KINDS = tuple(RETRIEVER_KINDS.names())
DEFAULT_FILES = 2
DEFAULT_QUESTIONS = 3
MAX_NEW_TOKENS = 96







# ---------------------------------------------------------------- data

def dataset_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    return sec10q_paths(args.pdfs, args.csv)


def matches(glob: str, name: str) -> bool:
    return fnmatch.fnmatch(name.lower(), (glob or "").strip().lower())


def load_rows(path: Path, all_pdfs: list[str]) -> list[dict[str, Any]]:
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            question = (row.get("Question") or "").strip()
            if not question:
                continue
            glob = (row.get("Source Docs") or "").strip()
            rows.append({"question": question, "glob": glob, "type": (row.get("Question Type") or "").strip(),
                         "answer": (row.get("Answer") or "").strip(),
                         "docs": [p for p in all_pdfs if matches(glob, p)]})
    return rows


def choose_files(rows: list[dict[str, Any]], all_pdfs: list[str], n: int) -> list[str]:
    """The n filings with the most single-document questions (ties: name order)."""
    single = Counter(r["docs"][0] for r in rows if len(r["docs"]) == 1)
    return sorted(sorted(all_pdfs), key=lambda p: -single.get(p, 0))[:n]


# ---------------------------------------------------------------- scoring

def source_file(citation: str) -> str:
    """'2023 Q3 NVDA.pdf p. 3' / 'pp. 3-4' -> '2023 Q3 NVDA.pdf'."""
    return re.sub(r"\s+pp?\.\s*\d+(?:-\d+)?$", "", str(citation)).strip()


def doc_scores(citations: list[str], glob: str) -> dict[str, float | None]:
    if not citations:
        return {"doc_hit": 0.0, "doc_precision": None, "doc_rr": 0.0}
    ok = [matches(glob, source_file(c)) for c in citations]
    rr = next((1.0 / i for i, hit in enumerate(ok, start=1) if hit), 0.0)
    return {"doc_hit": 1.0 if any(ok) else 0.0, "doc_precision": sum(ok) / len(ok), "doc_rr": rr}


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(board: list[dict[str, Any]], columns: list[str], markdown: bool) -> str:
    rows = [[fmt(r.get(c), 1 if c in ("k", "tokens") else (1 if c == "latency_s" else 3)) for c in columns]
            for r in board]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(columns, *rows)]
    line = lambda row: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(row) for row in rows])


def clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and value != value:
        return None
    return value


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run time on 2 shared CPU cores: ingest ~1.6 s per page (the default pair, 2023 Q3 NVDA + MSFT, is 119 pages), then one "
               "local-LLM answer per question and retriever (9 by default, max_new_tokens=96). Data: "
               "../shared/datasets/sec10q/{pdfs,questions.csv}, or $RAG_DATASETS/sec10q/, or --pdfs / --csv.")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES,
                        help=f"how many filings to ingest, those with the most single-doc questions (default "
                             f"{DEFAULT_FILES})")
    parser.add_argument("--pdf", action="append", default=[], metavar="NAME",
                        help="ingest exactly this filing (file name in the PDF folder); repeatable; overrides --files")
    parser.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS,
                        help=f"first N questions about the ingested filings (default {DEFAULT_QUESTIONS})")
    parser.add_argument("--retrievers", default=",".join(KINDS), help="comma-separated (default: all three)")
    parser.add_argument("--pdfs", help="folder of PDFs (default ../shared/datasets/sec10q/pdfs)")
    parser.add_argument("--csv", help="questions CSV (default ../shared/datasets/sec10q/questions.csv)")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS,
                        help=f"generation limit per answer (default {MAX_NEW_TOKENS})")
    add_run_options(parser, "sec10q_eval.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pdf_dir, csv_path = dataset_paths(args)
    all_pdfs = sorted(p.name for p in pdf_dir.glob("*.pdf")) if pdf_dir.is_dir() else []
    if not all_pdfs:
        sys.exit(f"No PDFs in {pdf_dir}: pass --pdfs DIR or set RAG_DATASETS to the folder holding sec10q/.")
    if not csv_path.is_file():
        sys.exit(f"No {csv_path}: pass --csv FILE.")
    rows = load_rows(csv_path, all_pdfs)
    if args.pdf:
        missing = [p for p in args.pdf if p not in all_pdfs]
        if missing:
            sys.exit(f"Not in {pdf_dir}: {', '.join(missing)}")
        chosen = list(dict.fromkeys(args.pdf))
    else:
        chosen = choose_files(rows, all_pdfs, args.files)
    eligible = [r for r in rows if r["docs"] and set(r["docs"]) <= set(chosen)]
    selected = eligible[: args.questions]
    if not selected:
        sys.exit(f"No question in {csv_path} is only about {', '.join(chosen)}.")
    log(f"filings: {', '.join(chosen)}; {len(eligible)} questions about them, asking {len(selected)}")

    start_state = machine_state()
    tmp = Path(tempfile.mkdtemp(prefix="rag-sec10q-", dir=args.tmp))
    try:
        folder = tmp / "pdfs"
        folder.mkdir()
        for name in chosen:
            shutil.copy2(pdf_dir / name, folder / name)

        import torch

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        from rag import RAG, Config
        from rag.evaluation.questions import Question

        app = RAG(Config(storage_dir=tmp / "storage", max_new_tokens=args.max_new_tokens))
        t0 = time.perf_counter()
        report = app.ingest(folder, progress=False)
        ingest_s = time.perf_counter() - t0
        log(f"ingested in {ingest_s:.1f} s")
        ingest_state = machine_state()

        questions = [Question(question=r["question"], reference_answer=r["answer"] or None) for r in selected]
        retrievers = [k.strip() for k in args.retrievers.split(",") if k.strip()]
        t0 = time.perf_counter()
        results = app.evaluate(questions, retrievers=retrievers, judge="local", progress=False,
                               output_dir=tmp / "results")
        eval_s = time.perf_counter() - t0
        log(f"evaluated in {eval_s:.1f} s")
        end_state = machine_state()

        glob_of = {r["question"]: r["glob"] for r in selected}
        type_of = {r["question"]: r["type"] for r in selected}
        per_row = []
        for row in results.rows.to_dict(orient="records"):
            cites = list(row.get("sources") or [])
            row.update(doc_scores(cites, glob_of.get(row["question"], "")))
            row["k"] = len(cites)
            row["source_docs"] = glob_of.get(row["question"])
            row["question_type"] = type_of.get(row["question"])
            per_row.append(clean(row))

        board = []
        for entry in results.leaderboard.to_dict(orient="records"):
            mine = [r for r in per_row if r["version"] == entry["version"] and not r.get("error")]
            for key in ("doc_hit", "doc_precision", "doc_rr", "k"):
                vals = [r[key] for r in mine if r.get(key) is not None]
                entry[key] = sum(vals) / len(vals) if vals else None
            board.append(clean(entry))

        columns = ["retriever", "questions", "context_relevance", "groundedness", "answer_relevance", "triad",
                   "correctness", "token_recall", "token_f1", "doc_hit", "doc_precision", "k", "latency_s", "tokens",
                   "errors"]
        # the spec names are long; the kind is enough in the table (full names are in the JSON)
        table = [dict(r, retriever=r.get("kind") or r.get("retriever")) for r in board]
        print(f"SEC 10-Q, filings: {', '.join(chosen)} ({report.pages if hasattr(report, 'pages') else '?'} pages); "
              f"{len(selected)} of {len(eligible)} questions about them; local LLM (max_new_tokens="
              f"{args.max_new_tokens}), judge=local.")
        print(f"Ingest {ingest_s:.1f} s; evaluate {eval_s:.1f} s.")
        print(render(table, columns, args.markdown))
        print("triad = mean of context_relevance, groundedness, answer_relevance (local judge); correctness = key-fact "
              "correctness against the reference answer (token recall when it states no number, code, name or role); "
              "token_recall = share of its words in the answer; doc_hit = any source from a filing matching Source "
              "Docs (document level, no evidence pages); doc_precision = share of sources that do; k = sources per "
              "answer; latency_s = mean seconds per answer.")
        for r in selected:
            print(f"  Q [{r['type']}, {r['glob']}]: {r['question']}")
        print(f"uptime at start: {start_state['uptime']}")
        print(f"uptime at end:   {end_state['uptime']}")

        out = {
            "filings": chosen, "questions_eligible": len(eligible), "questions": [dict(q) for q in selected],
            "max_new_tokens": args.max_new_tokens, "torch_threads": torch.get_num_threads(),
            "ingest_seconds": round(ingest_s, 2), "evaluate_seconds": round(eval_s, 2), "ingest_report": ingest_summary(report),
            "leaderboard": board, "rows": per_row,
            "machine_start": start_state, "machine_after_ingest": ingest_state, "machine_end": end_state,
        }
        write_results(args.json, out)
    finally:
        remove_unless_kept(tmp, args.keep)


if __name__ == "__main__":
    main()
