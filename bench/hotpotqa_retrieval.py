"""Retrieval quality on HotpotQA (distractor setting): hit rate, recall, MRR and nDCG per retriever.

    .venv/bin/python bench/hotpotqa_retrieval.py [--questions N] [--markdown]

What it does:

* reads ``hotpotqa/dev_questions.jsonl`` (``question_text``, ``contexts[*].title /
  paragraph_text / is_supporting``) from ``../shared/datasets`` (or ``$RAG_DATASETS``, or
  ``--data FILE``) and takes the first ``--questions`` questions;
* pools ALL their paragraphs (gold and distractor, de-duplicated by title + text) into one
  corpus and renders each paragraph as its own one-page PDF (reportlab, the way tests/pdfs.py
  does), named ``<slug of title>-<short hash>.pdf``, in a temporary folder;
* ingests that folder with ``RAG(Config(storage_dir=tmp)).ingest(folder)``;
* asks every question with ``app.retrieve(question, kind)`` (retrieval + window replacement /
  merging + rerank, no LLM) for each retriever and scores the returned sources, in order,
  against the question's 2 supporting paragraphs (gold = their PDF files):

  - ``hit@k``: any gold paragraph's file among the k returned sources (k = how many final
    sources that retriever returns; reported per retriever, as mean and range);
  - ``both@k``: recall of both gold paragraphs, i.e. both files among the k sources
    (HotpotQA is multi-hop: an answer usually needs both);
  - ``recall@k``: share of the 2 gold paragraphs found;
  - ``MRR``: 1 / rank of the first gold source; ``nDCG@10``: binary gains, a source gains only
    for a gold paragraph not already covered (rag.evaluation.metrics);
  - ``p50 ms``: median wall time of ``app.retrieve`` (the first call of each retriever, which
    loads its index and models, is an untimed warm-up).

Caveat: every document here is one short paragraph (a few sentences, one page). Sentence-window
retrieval then widens a sentence to (nearly) the whole paragraph, and auto-merging can merge
leaves only into parents of that same paragraph, so both behave differently than on long PDFs
(where windows and parents add neighbouring text from a long page); the hierarchy and window
mostly change how many final sources come back (k) and how duplicates of one paragraph are
counted. Compare the retrievers here as "what ranks the right paragraphs first", not as a
verdict on how they do on long filings.

The table goes to stdout (aligned text, or Markdown with ``--markdown``); all numbers also go
to bench/results/hotpotqa_retrieval.json (git-ignored). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, add_run_options, ingest_summary, log, machine_state, remove_unless_kept, write_results  # noqa: E402
from rag.retrieval import RETRIEVER_KINDS  # noqa: E402

KINDS = tuple(RETRIEVER_KINDS.names())
DEFAULT_QUESTIONS = 40  # ~400 one-paragraph PDFs: fits in ~10 min on 2 shared CPU cores (see --help)
CAVEAT = ("Note: each document is a single short paragraph (one page), so sentence_window widens a sentence to "
          "(almost) the whole paragraph and auto_merging can only merge within that paragraph; both behave "
          "differently than on long PDFs.")







# ---------------------------------------------------------------- data

def dataset_path(args: argparse.Namespace) -> Path:
    if args.data:
        return Path(args.data)
    base = Path(os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets")
    folder = base / "hotpotqa" if (base / "hotpotqa").is_dir() else base
    return folder / "dev_questions.jsonl"


def load_questions(path: Path, n: int) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = json.loads(line)
            out.append(obj)
            if len(out) >= n:
                break
    return out


def slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return (s[:limit].strip("-") or "untitled")


def paragraph_key(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\n{text}".encode("utf-8")).hexdigest()


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A text PDF with one string per page: the tests' own PDF writer."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfs import make_pdf as make

    return make(path, pages)


def to_latin1(text: str) -> str:
    """reportlab's standard fonts cover Latin-1; other characters would vanish or print as boxes."""
    import unicodedata

    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


def build_corpus(questions: list[dict[str, Any]], folder: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Write one PDF per unique paragraph; return key -> file name, and per question its gold file names."""
    files: dict[str, str] = {}
    per_question = []
    for q in questions:
        gold = []
        for ctx in q["contexts"]:
            title, text = ctx.get("title", ""), ctx.get("paragraph_text", "")
            key = paragraph_key(title, text)
            if key not in files:
                name = f"{slug(title)}-{key[:8]}.pdf"
                make_pdf(folder / name, [to_latin1(f"{title}\n{text}")])
                files[key] = name
            if ctx.get("is_supporting"):
                gold.append(files[key])
        answers = [s for a in q.get("answers_objects", []) for s in a.get("spans", [])]
        per_question.append({"id": q.get("question_id"), "question": q.get("question_text") or q.get("question"),
                             "gold": sorted(set(gold)), "answers": answers})
    return files, per_question


# ---------------------------------------------------------------- scoring

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    idx = (len(values) - 1) * q
    lo, hi = int(idx), min(int(idx) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (idx - lo)


def score_kind(app: Any, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    from rag.evaluation.metrics import hit_at_k, ndcg_at_k, reciprocal_rank

    app.retrieve(items[0]["question"], kind)  # warm-up: loads the index, embedder and reranker
    per_q, times = [], []
    for item in items:
        start = time.perf_counter()
        sources = app.retrieve(item["question"], kind)
        times.append(time.perf_counter() - start)
        evidence = [{"file": f} for f in item["gold"]]
        files = [s.file.lower() for s in sources]
        found = sum(1 for f in item["gold"] if f.lower() in files)
        per_q.append({
            "id": item["id"], "k": len(sources), "hit": hit_at_k(sources, evidence),
            "both": 1.0 if evidence and found == len(evidence) else 0.0,
            "recall": found / len(evidence) if evidence else None,
            "mrr": reciprocal_rank(sources, evidence), "ndcg": ndcg_at_k(sources, evidence, 10),
            "sources": [s.file for s in sources], "unique_files": len(set(files)),
            "gold": item["gold"], "seconds": round(times[-1], 4),
        })
    scored = [r for r in per_q if r["gold"]]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in scored if r[key] is not None]
        return round(statistics.fmean(vals), 4) if vals else None

    ks = [r["k"] for r in per_q]
    return {
        "retriever": app.spec(kind).name, "kind": kind, "questions": len(scored),
        "k_mean": round(statistics.fmean(ks), 2), "k_min": min(ks), "k_max": max(ks),
        "unique_files_mean": round(statistics.fmean(r["unique_files"] for r in per_q), 2),
        "hit_at_k": mean("hit"), "both_at_k": mean("both"), "recall_at_k": mean("recall"),
        "mrr": mean("mrr"), "ndcg_at_10": mean("ndcg"),
        "p50_ms": round(1000 * percentile(times, 0.5), 1), "p95_ms": round(1000 * percentile(times, 0.95), 1),
        "per_question": per_q,
    }


def render(results: list[dict[str, Any]], markdown: bool) -> str:
    head = ["retriever", "k", "files", "hit@k", "both@k", "recall@k", "MRR", "nDCG@10", "p50 ms"]
    rows = []
    for r in results:
        k = f"{r['k_mean']:g}" if r["k_min"] == r["k_max"] else f"{r['k_mean']:.1f} ({r['k_min']}-{r['k_max']})"
        rows.append([r["retriever"], k, f"{r['unique_files_mean']:.2f}"] + [f"{r[c]:.3f}" for c in ("hit_at_k", "both_at_k", "recall_at_k", "mrr",
                                                                   "ndcg_at_10")] + [f"{r['p50_ms']:.0f}"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows])


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CAVEAT + "\n\nk is the number of final sources a retriever returns (after rerank / merging), so "
               "hit@k is not at the same k across retrievers. Data: ../shared/datasets/hotpotqa/"
               "dev_questions.jsonl, or $RAG_DATASETS/hotpotqa/, or --data FILE. Default: "
               f"{DEFAULT_QUESTIONS} questions (~400 one-paragraph PDFs), sized to take at most ~10 min on 2 "
               "shared CPU cores.")
    parser.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS,
                        help=f"first N questions; all their paragraphs form the corpus (default {DEFAULT_QUESTIONS})")
    parser.add_argument("--data", help="dev_questions.jsonl (default ../shared/datasets/hotpotqa/dev_questions.jsonl)")
    parser.add_argument("--retrievers", default=",".join(KINDS), help="comma-separated (default: all three)")
    add_run_options(parser, "hotpotqa_retrieval.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    path = dataset_path(args)
    if not path.is_file():
        sys.exit(f"No {path}: pass --data FILE or set RAG_DATASETS to the folder holding hotpotqa/.")
    start_state = machine_state()
    questions = load_questions(path, args.questions)
    if not questions:
        sys.exit(f"No questions in {path}.")
    tmp = Path(tempfile.mkdtemp(prefix="rag-hotpotqa-", dir=args.tmp))
    try:
        pdfs = tmp / "pdfs"
        pdfs.mkdir()
        t0 = time.perf_counter()
        files, items = build_corpus(questions, pdfs)
        render_s = time.perf_counter() - t0
        log(f"{len(items)} questions, {len(files)} unique paragraphs -> PDFs in {render_s:.1f} s")

        import torch

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        from rag import RAG, Config

        app = RAG(Config(storage_dir=tmp / "storage"))
        t0 = time.perf_counter()
        report = app.ingest(pdfs, progress=False)
        ingest_s = time.perf_counter() - t0
        log(f"ingested in {ingest_s:.1f} s")

        results = []
        for kind in [k.strip() for k in args.retrievers.split(",") if k.strip()]:
            t0 = time.perf_counter()
            results.append(score_kind(app, kind, items))
            log(f"{kind}: {time.perf_counter() - t0:.1f} s")
        end_state = machine_state()

        split = dataset_path(args).name.removesuffix(".jsonl").removesuffix("_questions")
        print(f"HotpotQA {split} (distractor, {dataset_path(args)}), first {len(items)} questions; "
              f"corpus = all their paragraphs: "
              f"{len(files)} one-paragraph PDFs; gold = the 2 supporting paragraphs' files.")
        print(f"Ingest {ingest_s:.1f} s; retrieval = app.retrieve (no LLM), latency after one warm-up call.")
        print(render(results, args.markdown))
        print("k: final sources returned (mean, range when it varies); files: distinct PDFs among them (mean); hit@k: any gold file among them; both@k: both "
              "gold files among them; recall@k: share of the 2 gold files found.")
        print(CAVEAT)
        print(f"uptime at start: {start_state['uptime']}")
        print(f"uptime at end:   {end_state['uptime']}")

        out = {
            "dataset": str(path), "questions": len(items), "paragraphs": len(files),
            "render_seconds": round(render_s, 2), "ingest_seconds": round(ingest_s, 2),
            "ingest_report": ingest_summary(report), "torch_threads": torch.get_num_threads(),
            "retrievers": results, "caveat": CAVEAT, "machine_start": start_state, "machine_end": end_state,
        }
        write_results(args.json, out)
    finally:
        remove_unless_kept(tmp, args.keep)


if __name__ == "__main__":
    main()
