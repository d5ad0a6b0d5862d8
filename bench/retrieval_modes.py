"""Retriever kinds x first-stage modes x embedders, at common cut-offs, on HotpotQA and SEC 10-Q filings.

    .venv/bin/python bench/retrieval_modes.py [--split dev] [--questions 40] [--sec-files 5]
        [--embedders minilm,minilm-int8,multilingual-e5-small] [--datasets hotpotqa,sec10q] [--markdown]

* HotpotQA (``hotpotqa/<split>_questions.jsonl``): the paragraphs of the first ``--questions``
  questions pooled into one corpus of one-page PDFs (as bench/hotpotqa_retrieval.py builds it);
  gold = the two supporting paragraphs. Metrics: ``both@k`` (both gold paragraphs among the first
  k sources) and ``hit@k``.
* SEC 10-Q (``sec10q/pdfs`` + ``questions.csv``): the ``--sec-files`` filings of the latest quarter
  (one per company) and every question whose ``Source Docs`` pattern matches one of them;
  document-level ``hit@k``: a source among the first k comes from a matching filing.
* Every kind is asked for at least 10 final sources (``deep`` specs below), so all rows are
  compared at the same k = 1, 2, 4, 6, 10; a ``default`` row per kind and mode uses the kind's
  own settings (own k, as the app runs it). 95% intervals: percentile bootstrap over questions.
* ``hybrid hops=2`` rows: the hybrid first stage followed by a second search (see
  ``SecondHopRetriever``); ``--no-hops`` leaves them out.
* Latency: p50 / p95 wall and p50 CPU time of ``app.retrieve`` (first stage + window/merge +
  rerank, no LLM), warm; on a shared machine the CPU time is the comparable number.

The table goes to stdout; numbers also to bench/results/retrieval_modes-<split>.json.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, sec10q_paths, write_results  # noqa: E402
from hotpotqa_retrieval import build_corpus, load_questions, percentile  # noqa: E402

CUTOFFS = (1, 2, 4, 6, 10)
DEEP = {"basic": "top_k=10", "sentence_window": "top_k=20,rerank_top_n=10",
        "auto_merging": "top_k=30,rerank_top_n=10"}
MODES = ("dense", "bm25", "hybrid")
RERANKERS = ("embedding", "fused", "none")  # for the kinds that rerank (basic does not by default)


def hotpotqa_items(split: str, n: int, folder: Path) -> list[dict[str, Any]]:
    import os

    base = Path(os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets") / "hotpotqa"
    questions = load_questions(base / f"{split}_questions.jsonl", n)
    _, items = build_corpus(questions, folder)
    return [{"question": i["question"], "gold": [g.lower() for g in i["gold"]], "match": "all"}
            for i in items if i["gold"]]


def sec_items(files: int, folder: Path) -> list[dict[str, Any]]:
    pdf_dir, questions_csv = sec10q_paths(None, None)
    latest = sorted(pdf_dir.glob("*.pdf"), key=lambda p: p.name)[-files:]
    for pdf in latest:
        shutil.copy(pdf, folder / pdf.name)
    names = [p.name for p in latest]
    items = []
    with open(questions_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            gold = [n.lower() for n in names if fnmatch.fnmatch(n, row["Source Docs"].strip())]
            if gold:
                items.append({"question": row["Question"], "gold": gold, "match": "any"})
    return items


def found_at(sources: list[Any], item: dict[str, Any], k: int) -> float:
    files = {s.file.lower() for s in sources[:k]}
    hits = [g in files for g in item["gold"]]
    return float(all(hits) if item["match"] == "all" else any(hits))


def run_spec(app: Any, spec: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    from rag.evaluation.stats import estimate

    app.retrieve(items[0]["question"], spec)  # warm-up: index, BM25, embedder
    per_k: dict[int, list[float]] = {k: [] for k in CUTOFFS}
    times, cpu, counts = [], [], []
    for item in items:
        start, start_cpu = time.perf_counter(), time.process_time()
        sources = app.retrieve(item["question"], spec)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        counts.append(len(sources))
        for k in CUTOFFS:
            per_k[k].append(found_at(sources, item, k))
    out = {"spec": app.spec(spec).name, "n": len(items), "k_mean": round(statistics.fmean(counts), 2),
           "p50_ms": round(1000 * percentile(times, 0.5), 1), "p95_ms": round(1000 * percentile(times, 0.95), 1),
           "cpu_p50_ms": round(1000 * percentile(cpu, 0.5), 1)}
    for k in CUTOFFS:
        e = estimate(per_k[k])
        out[f"@{k}"] = [round(e.mean, 3), round(e.lo if e.lo is not None else e.mean, 3), round(e.hi if e.hi is not None else e.mean, 3)]
    return out


def ingest(embedder: str, corpus: Path, storage: Path) -> tuple[Any, dict[str, Any]]:
    import resource

    from rag.app import RAG
    from rag.config import Config

    app = RAG(Config(storage_dir=storage, embed_model=embedder, embed_threads=1), progress=False)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = app.ingest(corpus, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return app, {"embedder": embedder, "files": len(report.added), "embedded": report.embedded,
                 "wall_s": round(time.perf_counter() - start, 1),
                 "cpu_s": round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 1)}


def fmt(cell: list[float]) -> str:
    return f"{cell[0]:.2f} [{cell[1]:.2f},{cell[2]:.2f}]"


def render(dataset: str, metric: str, rows: list[dict[str, Any]]) -> str:
    head = ["embedder", "row", *[f"{metric}@{k}" for k in CUTOFFS], "k", "p50 ms", "p95 ms", "CPU p50 ms"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(" | ".join([r["embedder"], r["label"], *[fmt(r[f"@{k}"]) for k in CUTOFFS],
                                 str(r["k_mean"]), str(r["p50_ms"]), str(r["p95_ms"]), str(r["cpu_p50_ms"])]))
    return f"\n### {dataset}\n\n" + "\n".join(lines)


def main() -> None:
    from rag.app import RAG

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="dev", help="HotpotQA split file prefix (dev; held-out sets: their name)")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--sec-files", type=int, default=5)
    parser.add_argument("--embedders", default="minilm,minilm-int8,multilingual-e5-small")
    parser.add_argument("--datasets", default="hotpotqa,sec10q")
    parser.add_argument("--kinds", default="basic,sentence_window,auto_merging")
    parser.add_argument("--no-default-rows", action="store_true")
    parser.add_argument("--no-hops", action="store_true", help="leave out the hybrid hops=2 rows")
    parser.add_argument("--work", help="keep corpora and indexes in this folder and reuse them on the next run "
                                       "(ingest is then incremental: only retrieval is re-measured)")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": machine_state(), "split": args.split, "datasets": {}}
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-bench-modes-"))
    try:
        for dataset in args.datasets.split(","):
            size = args.questions if dataset == "hotpotqa" else args.sec_files
            corpus = work / f"{dataset}-{args.split}-{size}"
            corpus.mkdir(parents=True, exist_ok=True)
            items = hotpotqa_items(args.split, args.questions, corpus) if dataset == "hotpotqa" \
                else sec_items(args.sec_files, corpus)
            metric = "both" if dataset == "hotpotqa" else "hit"
            rows, ingests = [], []
            for embedder in args.embedders.split(","):
                log(f"{dataset}: ingesting {len(list(corpus.glob('*.pdf')))} PDFs with {embedder}")
                app, info = ingest(embedder, corpus, work / f"storage-{corpus.name}-{embedder}")
                ingests.append(info)
                apps = {name: RAG(app.config.replace(reranker=name), progress=False) for name in RERANKERS}
                for kind in args.kinds.split(","):
                    rerankers = ("none",) if kind == "basic" else RERANKERS
                    stages = [*MODES] + ([] if args.no_hops else ["hybrid,hops=2"])
                    for stage in stages:
                        variants = [("deep", r, f"{kind}:mode={stage},{DEEP[kind]}") for r in rerankers]
                        if not args.no_default_rows:
                            variants += [("default", r, f"{kind}:mode={stage}") for r in rerankers if r != "none"
                                         or kind == "basic"]
                        for label, reranker, spec in variants:
                            log(f"  {embedder} {spec} reranker={reranker}")
                            row = run_spec(apps[reranker], spec, items)
                            rows.append({"embedder": embedder,
                                         "label": f"{kind} {stage.replace(',', ' ')} {label} rerank={reranker}", **row})
            results["datasets"][dataset] = {"questions": len(items), "ingest": ingests, "rows": rows}
            print(render(f"{dataset} ({args.split if dataset == 'hotpotqa' else 'latest quarter'}, "
                         f"{len(items)} questions)", metric, rows), flush=True)
            print("\ningest: " + "; ".join(f"{i['embedder']} {i['embedded']} nodes {i['wall_s']} s wall "
                                           f"{i['cpu_s']} s CPU" for i in ingests), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    write_results(ROOT / "bench" / "results" / f"retrieval_modes-{args.split}.json", results)


if __name__ == "__main__":
    main()
