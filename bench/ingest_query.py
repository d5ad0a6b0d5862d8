"""Ingestion and query benchmark on real SEC 10-Q filings, against a naive LlamaIndex build.

    .venv/bin/python bench/ingest_query.py [--files N] [--queries N] [--retrievals N] [--markdown]

What it measures (each ingest in its own fresh process, so peak memory is per process):

* ours: ``RAG(Config(storage_dir=tmp)).ingest(folder)`` into a fresh temporary storage folder:
  pages/s extracted, chunks/s embedded, total ingest time, CPU time, peak RSS
  (``resource.getrusage`` high-water mark) and time / peak RSS per phase (a sampling
  thread reads /proc/self/statm every 10 ms; phases come from thin timing wrappers around
  rag.ingest.sync and rag.stores.backends.local functions, nothing in rag/ is changed);
* naive: the same three retrievers built "the plain way" with LlamaIndex defaults:
  ``SimpleDirectoryReader`` -> one Document per file (pages joined with a blank line, as the
  course does, metadata ``file_name`` only, which is what ours embeds) -> the same node parser
  with the same parameters -> ``VectorStoreIndex(nodes, embed_model=HuggingFaceEmbedding(
  <same MiniLM>, embed_batch_size=1))`` into a FAISS IndexFlatIP store (auto-merging: all
  nodes in the docstore, leaves embedded) -> ``storage_context.persist``. No batching, no
  length sorting, no caches. It reads exactly the PDFs that ours ingested;
* re-ingest of the unchanged folder (median of ``--reingest`` runs, plus the first one);
* query latency p50/p95 per retriever split into retrieve / rerank / generate (``app.query``,
  bundled local LLM, ``--queries`` questions each after one untimed warm-up answer), and
  retrieval-only latency (``app.retrieve``: retrieval + window/merge + rerank, no LLM) over
  ``--retrievals`` questions each; questions about the selected filings come first;
* size on disk of every index (ours: index folder + node/vector cache; naive: persist folder).

The table goes to stdout (aligned text, or Markdown with ``--markdown``); all numbers also go
to bench/results/ingest_query.json (git-ignored). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import functools
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, sec10q_paths  # noqa: E402
from rag.retrieval import RETRIEVER_KINDS  # noqa: E402

KINDS = tuple(RETRIEVER_KINDS.names())
DEFAULT_FILES = 2  # what fits in ~15 minutes on 2 shared CPU cores (see --help)
MB = 1024 * 1024

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # for both sides
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")




# ---------------------------------------------------------------- memory and phases

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; elsewhere the high-water mark as a stand-in)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return max_rss_bytes()


def max_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    peak = resource.getrusage(who).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Phases:
    """Wall time and peak RSS per named phase.

    Time goes to the innermost active phase (nested phases are subtracted from the outer
    one); "other" is whatever runs between phases. A daemon thread samples RSS every
    ``interval`` seconds and credits it to the phase active at that moment; every phase
    also gets a sample on entry and exit.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.peak: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.inclusive: dict[str, float] = defaultdict(float)
        self._stack = ["other"]
        self._lock = threading.Lock()
        self._mark = time.perf_counter()
        self._cpu_mark = time.process_time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Phases":
        self._mark = time.perf_counter()
        self._cpu_mark = time.process_time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._switch()
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _switch(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.seconds[self._stack[-1]] += now - self._mark
        self.cpu[self._stack[-1]] += cpu - self._cpu_mark
        self._mark, self._cpu_mark = now, cpu

    def _note(self, name: str) -> None:
        self.peak[name] = max(self.peak[name], rss_bytes())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = rss_bytes()
            with self._lock:
                name = self._stack[-1]
                self.peak[name] = max(self.peak[name], rss)

    @contextlib.contextmanager
    def phase(self, name: str):
        with self._lock:
            self._switch()
            self._stack.append(name)
            self.calls[name] += 1
            self._note(name)
        try:
            yield
        finally:
            with self._lock:
                self._note(name)
                self._switch()
                self._stack.pop()

    def wrap(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return wrapper

    @contextlib.contextmanager
    def span(self, key: str):
        """Inclusive wall time (nested phases included), e.g. per index."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.inclusive[key] += time.perf_counter() - start

    def as_dict(self) -> dict[str, Any]:
        names = sorted(set(self.seconds) | set(self.peak), key=lambda n: -self.seconds.get(n, 0.0))
        return {
            "phases": {n: {"seconds": round(self.seconds.get(n, 0.0), 4), "cpu_seconds": round(self.cpu.get(n, 0.0), 3),
                           "calls": self.calls.get(n, 0),
                           "peak_rss_mb": round(self.peak.get(n, 0) / MB, 1)} for n in names},
            "spans": {k: round(v, 4) for k, v in self.inclusive.items()},
            "sampled_peak_rss_mb": round(max(self.peak.values(), default=0) / MB, 1),
        }




def preload_modules() -> float:
    """Import the heavy libraries both sides use, so neither ingest timing pays for imports."""
    start = time.perf_counter()
    import faiss  # noqa: F401
    import numpy  # noqa: F401
    import pypdf  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: F401
    from llama_index.core.node_parser import (  # noqa: F401
        HierarchicalNodeParser,
        SentenceSplitter,
        SentenceWindowNodeParser,
    )
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding  # noqa: F401
    from llama_index.vector_stores.faiss import FaissVectorStore  # noqa: F401

    import pypdf  # noqa: F401
    return time.perf_counter() - start


def set_threads(threads: int) -> int:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# ---------------------------------------------------------------- workers (one process each)

def worker_ours(spec: dict[str, Any]) -> dict[str, Any]:
    import_seconds = preload_modules()
    threads = set_threads(spec["threads"])
    import rag.ingest.sync as sync
    import rag.stores.backends.local as store
    from rag import RAG, Config

    ph = Phases()
    # Timing wrappers only: the functions are looked up at call time in their modules.
    sync.read_pdf = ph.wrap("extract text (pypdf)", sync.read_pdf)
    sync.file_sha256 = ph.wrap("hash files", sync.file_sha256)
    sync.parse = ph.wrap("parse nodes", sync.parse)
    store._write_atomic = ph.wrap("write caches", store._write_atomic)
    store.IndexStore.stored_nodes = ph.wrap("read node cache", store.IndexStore.stored_nodes)
    store.IndexStore._build = ph.wrap("build + persist index", store.IndexStore._build)
    sync.embed_texts = ph.wrap("embed", sync.embed_texts)
    store.embedding_model = ph.wrap("load embedding model", store.embedding_model)
    original_ensure = store.IndexStore._ensure_index

    def ensure_index(self, parser_spec, *args, **kwargs):
        with ph.span(parser_spec.kind):
            return original_ensure(self, parser_spec, *args, **kwargs)

    store.IndexStore._ensure_index = ensure_index

    app = RAG(Config(storage_dir=Path(spec["storage"])))
    state0, cpu0 = machine_state(), cpu_seconds()
    ph.start()
    start = time.perf_counter()
    report = app.ingest(spec["pdf_dir"], progress=False)
    wall = time.perf_counter() - start
    ph.stop()
    cpu = cpu_seconds() - cpu0
    return {
        "side": "ours", "wall_seconds": round(wall, 3), "report_seconds": round(report.seconds, 3),
        "cpu_seconds": round(cpu, 2), "import_seconds": round(import_seconds, 2), "torch_threads": threads,
        "pages": report.pages, "embedded": report.embedded,
        "ingested": sorted(report.added + report.changed + report.unchanged),
        "failed": [{"path": s.path, "reason": s.reason} for s in report.failed],
        "indexes": report.indexes, "max_rss_mb": round(max_rss_bytes() / MB, 1),
        "machine_before": state0, "machine_after": machine_state(), **ph.as_dict(),
    }


def worker_naive(spec: dict[str, Any]) -> dict[str, Any]:
    import_seconds = preload_modules()
    threads = set_threads(spec["threads"])
    import faiss
    from llama_index.core import Document, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import (
        HierarchicalNodeParser,
        SentenceSplitter,
        SentenceWindowNodeParser,
        get_leaf_nodes,
    )
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    from rag.config import Config
    from rag.embedding import model_path as embedding_model_path

    config = Config()  # the same parser parameters as ours
    model_path = embedding_model_path(config.embed_model)
    ph = Phases()
    # Class-level timing wrapper (VectorStoreIndex calls it once per embed_batch_size texts).
    HuggingFaceEmbedding._get_text_embeddings = ph.wrap("embed", HuggingFaceEmbedding._get_text_embeddings)
    out = Path(spec["storage"])
    files = [Path(f) for f in spec["files"]]
    counts: dict[str, dict[str, int]] = {}
    state0, cpu0 = machine_state(), cpu_seconds()
    ph.start()
    start = time.perf_counter()
    with ph.phase("load embedding model"):
        embed_model = HuggingFaceEmbedding(model_name=model_path, embed_batch_size=1)
    with ph.phase("extract text (pypdf)"):
        pages = SimpleDirectoryReader(input_files=files).load_data()
    with ph.phase("join pages"):
        by_file: dict[str, list[str]] = {}
        for page in pages:
            by_file.setdefault(page.metadata["file_name"], []).append(page.text)
        documents = [Document(text="\n\n".join(texts), metadata={"file_name": name})
                     for name, texts in by_file.items()]
    dim = None
    for kind in KINDS:
        with ph.span(kind):
            with ph.phase("parse nodes"):
                if kind == "basic":
                    parser = SentenceSplitter(chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap)
                elif kind == "sentence_window":
                    parser = SentenceWindowNodeParser.from_defaults(
                        window_size=config.window_size, window_metadata_key="window",
                        original_text_metadata_key="original_text")
                else:
                    parser = HierarchicalNodeParser.from_defaults(chunk_sizes=list(config.chunk_sizes))
                nodes = parser.get_nodes_from_documents(documents)
            if dim is None:
                dim = len(embed_model.get_text_embedding("dimension probe"))
            storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(dim)))
            to_embed = nodes
            if kind == "auto_merging":
                storage.docstore.add_documents(nodes)
                to_embed = get_leaf_nodes(nodes)
            with ph.phase("build index (embed + add)"):
                VectorStoreIndex(to_embed, storage_context=storage, embed_model=embed_model)
            with ph.phase("persist index"):
                storage.persist(persist_dir=str(out / kind))
            counts[kind] = {"nodes": len(nodes), "vectors": len(to_embed)}
    wall = time.perf_counter() - start
    ph.stop()
    cpu = cpu_seconds() - cpu0
    return {
        "side": "naive", "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 2),
        "import_seconds": round(import_seconds, 2), "torch_threads": threads,
        "pages": len(pages), "embedded": sum(c["vectors"] for c in counts.values()),
        "ingested": sorted(by_file), "indexes": counts, "max_rss_mb": round(max_rss_bytes() / MB, 1),
        "machine_before": state0, "machine_after": machine_state(), **ph.as_dict(),
    }


def run_worker(side: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    spec_path, out_path = tmp / f"{side}-spec.json", tmp / f"{side}-result.json"
    spec_path.write_text(json.dumps(spec))
    log(f"{side} ingest in a fresh process ...")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_worker", side,
                           "--_spec", str(spec_path), "--_out", str(out_path)], cwd=ROOT)
    if proc.returncode != 0 or not out_path.is_file():
        sys.exit(f"the {side} worker failed (exit {proc.returncode})")
    result = json.loads(out_path.read_text())
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    log(f"{side} ingest: {result['wall_seconds']:.1f} s (process {result['process_seconds']:.1f} s, "
        f"peak RSS {result['max_rss_mb']:.0f} MB)")
    return result


# ---------------------------------------------------------------- query side (this process)

def load_questions(path: Path, files: list[str]) -> list[str]:
    """Questions from the CSV; those whose Source Docs glob matches a selected file come first."""
    if not path.is_file():
        log(f"{path} not found: using built-in questions")
        return ["What was the total net sales in the most recent quarter?",
                "What are the main risk factors?", "How did operating expenses change?"]
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("Question") or "").strip()]

    def relevant(row: dict[str, str]) -> bool:
        patterns = [p.strip() for p in (row.get("Source Docs") or "*").split(",") if p.strip()] or ["*"]
        return any(fnmatch.fnmatch(f, p) for f in files for p in patterns)

    ordered = [r for r in rows if relevant(r)] + [r for r in rows if not relevant(r)]
    return [r["Question"].strip() for r in ordered]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100  # linear interpolation, as numpy's default
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "mean": statistics.fmean(values) if values else None, "max": max(values) if values else None}


def query_side(args: argparse.Namespace, pdf_dir: Path, storage: Path, files: list[str],
               questions: list[str]) -> dict[str, Any]:
    ph = Phases().start()
    with ph.phase("imports"):
        import_seconds = preload_modules()
        threads = set_threads(args.threads)
        from rag import RAG, Config
        from rag.embedding import embedding_model
    app = RAG(Config(storage_dir=storage))
    out: dict[str, Any] = {"torch_threads": threads, "import_seconds": round(import_seconds, 2)}

    log(f"re-ingest unchanged folder x{args.reingest} ...")
    reingest = []
    for _ in range(args.reingest):
        with ph.phase("re-ingest (unchanged)"):
            start = time.perf_counter()
            report = app.ingest(pdf_dir, progress=False)
            wall = time.perf_counter() - start
        reingest.append({"wall_seconds": round(wall, 3), "report_seconds": round(report.seconds, 3),
                         "up_to_date": report.up_to_date, "embedded": report.embedded})
        if not report.up_to_date:
            log(f"WARNING: re-ingest was not a no-op: {report.as_dict()}")
    out["reingest"] = reingest

    with ph.phase("load embedding model"):
        start = time.perf_counter()
        embedding_model(app.config)
        out["embed_model_load_seconds"] = round(time.perf_counter() - start, 3)

    retrieval: dict[str, Any] = {}
    for kind in KINDS:
        with ph.phase("load index"):
            start = time.perf_counter()
            app.index(app.spec(kind))
            load_seconds = time.perf_counter() - start
        app.retrieve(questions[0], kind)  # untimed warm-up
        log(f"retrieval-only {kind}: {args.retrievals} questions (index load {load_seconds:.2f} s) ...")
        times = []
        with ph.phase("retrieve only"):
            for q in questions[: args.retrievals]:
                start = time.perf_counter()
                app.retrieve(q, kind)
                times.append(time.perf_counter() - start)
        retrieval[kind] = {"index_load_seconds": round(load_seconds, 3), "seconds": summary(times),
                           "all": [round(t, 4) for t in times]}
    out["retrieval"] = retrieval

    queries: dict[str, Any] = {}
    if args.queries > 0:
        with ph.phase("load LLM"):
            start = time.perf_counter()
            app.llm
            out["llm_load_seconds"] = round(time.perf_counter() - start, 3)
        with ph.phase("query (LLM)"):
            log("LLM warm-up answer (untimed) ...")
            start = time.perf_counter()
            app.query(questions[0], retriever=KINDS[0])
            out["llm_warmup_seconds"] = round(time.perf_counter() - start, 3)
            for kind in KINDS:
                log(f"query {kind}: {args.queries} questions ...")
                rows = []
                for q in questions[: args.queries]:
                    result = app.query(q, retriever=kind)
                    rows.append({"question": q, **result.timings, **result.usage,
                                 "answer_chars": len(result.answer), "sources": len(result.sources)})
                stages = {s: summary([r[s] for r in rows if s in r])
                          for s in ("retrieve", "rerank", "generate", "total")}
                tokens = {t: summary([float(r[t]) for r in rows if t in r])
                          for t in ("prompt_tokens", "completion_tokens")}
                queries[kind] = {"stages": stages, "tokens": tokens, "rows": rows}
    out["queries"] = queries
    ph.stop()
    out["max_rss_mb"] = round(max_rss_bytes() / MB, 1)
    out.update(ph.as_dict())
    return out


# ---------------------------------------------------------------- sizes

def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def sizes(ours_storage: Path, ours: dict[str, Any], naive_storage: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"ours": {}, "naive": {}}
    for kind, entry in ours["indexes"].items():
        index_dir = ours_storage / entry["dir"]
        caches = list((ours_storage / "cache" / "nodes").glob(f"{kind}-*"))
        out["ours"][kind] = {"index_bytes": du(index_dir), "cache_bytes": sum(du(c) for c in caches),
                             "files": {p.name: p.stat().st_size for p in index_dir.iterdir() if p.is_file()}}
    out["ours"]["documents_cache_bytes"] = du(ours_storage / "cache" / "documents")
    out["ours"]["total_bytes"] = du(ours_storage)
    if naive_storage is not None and naive_storage.is_dir():
        for kind in KINDS:
            d = naive_storage / kind
            if d.is_dir():
                out["naive"][kind] = {"index_bytes": du(d),
                                      "files": {p.name: p.stat().st_size for p in d.iterdir() if p.is_file()}}
        out["naive"]["total_bytes"] = du(naive_storage)
    return out


# ---------------------------------------------------------------- output

def render(title: str, header: list[str], rows: list[list[Any]], markdown: bool) -> str:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([title, rule, line(header), rule, *(line(r) for r in cells), rule])


def f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f}"


def pair(stat: dict[str, Any], fmt: Callable[[float | None], str] = ms) -> str:
    return f"{fmt(stat['p50'])} / {fmt(stat['p95'])}"


def tables(data: dict[str, Any], markdown: bool) -> str:
    ours, naive, q, size = data["ours"], data.get("naive"), data["query"], data["sizes"]
    op, np_ = ours["phases"], (naive or {}).get("phases", {})

    def phase_seconds(phases: dict[str, Any], name: str) -> float | None:
        return phases.get(name, {}).get("seconds")

    o_extract, n_extract = phase_seconds(op, "extract text (pypdf)"), phase_seconds(np_, "extract text (pypdf)")
    o_embed, n_embed = phase_seconds(op, "embed"), phase_seconds(np_, "embed")
    o_nodes = sum(e["nodes"] for e in ours["indexes"].values())
    n_nodes = sum(e["nodes"] for e in naive["indexes"].values()) if naive else None
    re_walls = [r["wall_seconds"] for r in q["reingest"]]
    n_total = size["naive"].get("total_bytes")
    nv = (lambda key: naive.get(key) if naive else None)
    out = []

    rows = [
        ["PDFs ingested", len(ours["ingested"]), len(naive["ingested"]) if naive else "-", ""],
        ["pages", ours["pages"], nv("pages") or "-", ""],
        ["nodes (3 indexes)", f"{o_nodes:,}", f"{n_nodes:,}" if naive else "-", ""],
        ["chunks embedded", f"{ours['embedded']:,}", f"{naive['embedded']:,}" if naive else "-", ""],
        ["total ingest time (s)", f(ours["wall_seconds"], 1), f(nv("wall_seconds"), 1),
         ratio(ours["wall_seconds"], nv("wall_seconds"))],
        ["CPU time user+sys (s)", f(ours["cpu_seconds"], 1), f(nv("cpu_seconds"), 1),
         ratio(ours["cpu_seconds"], nv("cpu_seconds"))],
        ["text extraction (s)", f(o_extract, 1), f(n_extract, 1), ratio(o_extract, n_extract)],
        ["pages/s extracted", f(ours["pages"] / o_extract if o_extract else None, 1),
         f(naive["pages"] / n_extract if naive and n_extract else None, 1), ""],
        ["embedding (s)", f(o_embed, 1), f(n_embed, 1), ratio(o_embed, n_embed)],
        ["chunks/s embedded", f(ours["embedded"] / o_embed if o_embed else None, 1),
         f(naive["embedded"] / n_embed if naive and n_embed else None, 1), ""],
        ["peak RSS, ru_maxrss (MB)", f(ours["max_rss_mb"], 0), f(nv("max_rss_mb"), 0),
         ratio(ours["max_rss_mb"], nv("max_rss_mb"))],
        ["re-ingest, nothing changed (s)", f"{f(statistics.median(re_walls), 2)} (1st {f(re_walls[0], 2)})"
         if re_walls else "-", "(full rebuild)", ""],
        ["storage on disk (MB)", f(size["ours"]["total_bytes"] / MB, 1),
         f(n_total / MB if n_total else None, 1), ratio(size["ours"]["total_bytes"], n_total)],
    ]
    title = (f"Ingest: {len(data['files'])} PDF(s), {data['pdf_mb']:.1f} MB, fresh storage"
             f" (ours = rag.RAG.ingest; naive = LlamaIndex defaults, embed_batch_size=1)")
    out.append(render(title, ["metric", "ours", "naive", "ours/naive"], rows, markdown))

    names = list(dict.fromkeys(list(op) + list(np_)))
    rows = [[n, f(phase_seconds(op, n), 2), f(op.get(n, {}).get("cpu_seconds"), 2),
             f(op.get(n, {}).get("peak_rss_mb"), 0),
             f(phase_seconds(np_, n), 2), f(np_.get(n, {}).get("cpu_seconds"), 2),
             f(np_.get(n, {}).get("peak_rss_mb"), 0)] for n in names]
    out.append(render("Ingest phases (wall and CPU s in the innermost phase; peak RSS sampled every 10 ms)",
                      ["phase", "ours s", "ours cpu s", "ours peak MB", "naive s", "naive cpu s", "naive peak MB"],
                      rows, markdown))

    rows = []
    for kind in KINDS:
        oe, os_ = ours["indexes"].get(kind, {}), size["ours"].get(kind, {})
        ne, ns = (naive or {}).get("indexes", {}).get(kind, {}), size["naive"].get(kind, {})
        o_s, n_s = ours["spans"].get(kind), (naive or {}).get("spans", {}).get(kind)
        rows.append([kind, f"{oe.get('nodes', 0):,}", f"{oe.get('vectors', 0):,}",
                     f"{ne['nodes']:,}/{ne['vectors']:,}" if ne else "-",
                     f(o_s, 1), f(n_s, 1), ratio(o_s, n_s),
                     f(os_.get("index_bytes", 0) / MB, 1), f(os_.get("cache_bytes", 0) / MB, 1),
                     f(ns["index_bytes"] / MB if ns else None, 1)])
    rows.append(["total (+ text cache, manifest)", f"{o_nodes:,}", f"{ours['embedded']:,}",
                 f"{n_nodes:,}/{naive['embedded']:,}" if naive else "-", "", "", "",
                 f(sum(size["ours"][k]["index_bytes"] for k in KINDS if k in size["ours"]) / MB, 1),
                 f((sum(size["ours"][k]["cache_bytes"] for k in KINDS if k in size["ours"])
                    + size["ours"]["documents_cache_bytes"]) / MB, 1),
                 f(n_total / MB if n_total else None, 1)])
    out.append(render("Per index (build s = parse+embed+build+persist of that index; sizes on disk)",
                      ["index", "nodes", "vectors", "naive nodes/vec", "ours build s", "naive build s",
                       "ours/naive", "ours index MB", "ours cache MB", "naive MB"], rows, markdown))

    rows = []
    for kind in KINDS:
        r = q["retrieval"][kind]
        row = [kind, r["seconds"]["n"], pair(r["seconds"]), f(r["index_load_seconds"], 2)]
        if kind in q["queries"]:
            st, tok = q["queries"][kind]["stages"], q["queries"][kind]["tokens"]
            row += [st["total"]["n"], pair(st["retrieve"]), pair(st["rerank"]), pair(st["generate"]),
                    pair(st["total"]), f(tok["prompt_tokens"]["p50"], 0)]
        else:
            row += [0, "-", "-", "-", "-", "-"]
        rows.append(row)
    title = ("Query latency, ms p50 / p95 (retrieval-only = app.retrieve: retrieve + window/merge + rerank; "
             "query = app.query with the local LLM)")
    out.append(render(title, ["retriever", "n", "retrieval-only", "index load s", "n", "retrieve", "rerank",
                              "generate", "total", "prompt tok p50"], rows, markdown))

    qp = q["phases"]
    rows = [[n, f(v["seconds"], 2), f(v["peak_rss_mb"], 0)] for n, v in qp.items()]
    rows.append(["process high-water mark (ru_maxrss)", "", f(q["max_rss_mb"], 0)])
    out.append(render("Query process phases", ["phase", "s", "peak MB"], rows, markdown))

    env = data["environment"]
    notes = [
        f"command: {data['command']}",
        f"machine: {env['cpus']} CPU(s), torch threads {q['torch_threads']}, {env['platform']}, "
        f"python {env['python']}, llama-index-core {env['llama_index']}",
        f"load: start {env['start']['uptime'] or env['start']['loadavg']}",
        f"      end   {env['end']['uptime'] or env['end']['loadavg']}",
        f"load average during ingest: ours {ours['machine_before']['loadavg'][0]} -> "
        f"{ours['machine_after']['loadavg'][0]}"
        + (f", naive {naive['machine_before']['loadavg'][0]} -> {naive['machine_after']['loadavg'][0]}"
           if naive else ""),
        f"embedding model load: {f(q['embed_model_load_seconds'])} s; LLM load {f(q.get('llm_load_seconds'))} s, "
        f"warm-up answer {f(q.get('llm_warmup_seconds'))} s; benchmark wall time {f(data['bench_seconds'], 0)} s",
    ]
    if ours["failed"]:
        notes.append("skipped by ours (and so left out of naive): "
                     + "; ".join(f"{s['path']}: {s['reason']}" for s in ours["failed"]))
    out.append("\n".join(("- " + n) if markdown else n for n in notes))
    return "\n\n".join(out)


# ---------------------------------------------------------------- main

def dataset_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    return sec10q_paths(args.pdfs, args.questions)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run time on 2 shared CPU cores (load average 2-3, 1 torch thread): the default (2 filings, "
               "78 pages) takes about 13-15 min, of which ~8 min are the 16 local-LLM answers; --files 3 took "
               "17 min. Ingest costs ~1.6 s per page on each side (ours and naive), so all 20 filings (18 "
               "readable, ~890 pages) would take about an hour. --queries 0 --retrievals 10 skips the LLM.",
    )
    parser.add_argument("--pdfs", help="folder of PDFs (default ../shared/datasets/sec10q/pdfs, "
                                       "or $RAG_DATASETS/sec10q/pdfs)")
    parser.add_argument("--questions", help="questions CSV with a Question column "
                                            "(default: questions.csv next to the pdfs folder)")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES,
                        help=f"use the first N PDFs in name order (default {DEFAULT_FILES}, chosen so that a "
                             "run ends in ~15 min on 2 shared cores; 20 = all of sec10q)")
    parser.add_argument("--queries", type=int, default=5,
                        help="LLM answers timed per retriever (default 5; 0 skips generation)")
    parser.add_argument("--retrievals", type=int, default=30,
                        help="retrieval-only (app.retrieve) questions per retriever (default 30)")
    parser.add_argument("--reingest", type=int, default=3, help="re-ingest runs with nothing changed (default 3)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive LlamaIndex build")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads in every process (default 1: on 2 shared cores torch's default "
                             "of one thread per core made generation about 2x slower; 0 = torch default)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "ingest_query.json"),
                        help="where to write the numbers (default bench/results/ingest_query.json)")
    parser.add_argument("--tmp", help="parent folder for the temporary storage (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage folders")
    parser.add_argument("--_worker", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--_spec", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args._worker:
        spec = json.loads(Path(args._spec).read_text())
        result = (worker_ours if args._worker == "ours" else worker_naive)(spec)
        Path(args._out).write_text(json.dumps(result))
        return

    bench_start = time.perf_counter()
    start_state = machine_state()
    pdf_dir, questions_csv = dataset_paths(args)
    all_pdfs = sorted(p for p in pdf_dir.glob("*.pdf") if p.is_file()) if pdf_dir.is_dir() else []
    if not all_pdfs:
        sys.exit(f"No PDFs in {pdf_dir}: pass --pdfs DIR or set RAG_DATASETS to the folder holding sec10q/.")
    files = all_pdfs[: max(args.files, 1)]
    log(f"{len(files)} of {len(all_pdfs)} PDFs from {pdf_dir} ({sum(p.stat().st_size for p in files) / MB:.1f} MB); "
        f"load {start_state['loadavg']}")

    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-", dir=args.tmp))
    try:
        selected = tmp / "pdfs"
        selected.mkdir()
        for p in files:
            (selected / p.name).symlink_to(p.resolve())
        ours_storage, naive_storage = tmp / "ours", tmp / "naive"
        base_spec = {"threads": args.threads, "pdf_dir": str(selected)}
        ours = run_worker("ours", {**base_spec, "storage": str(ours_storage)}, tmp)
        naive = None
        if not args.no_naive:
            ingested = [str(selected / name) for name in ours["ingested"]]
            naive = run_worker("naive", {**base_spec, "storage": str(naive_storage), "files": ingested}, tmp)
        questions = load_questions(questions_csv, [p.name for p in files])
        query = query_side(args, selected, ours_storage, [p.name for p in files], questions)
        size = sizes(ours_storage, ours, naive_storage if naive else None)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    import llama_index.core

    data = {
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/ingest_query.py", *sys.argv[1:]]),
        "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "pdf_dir": str(pdf_dir), "questions_csv": str(questions_csv),
        "files": [p.name for p in files], "pdf_mb": sum(p.stat().st_size for p in files) / MB,
        "ours": ours, "naive": naive, "query": query, "sizes": size,
        "bench_seconds": round(time.perf_counter() - bench_start, 1),
        "environment": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "llama_index": llama_index.core.__version__, "start": start_state, "end": machine_state()},
    }
    text = tables(data, args.markdown)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=str))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
