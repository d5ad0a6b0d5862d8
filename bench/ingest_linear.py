"""Is ingest linear in nodes per PDF? One PDF of N sentences, sentence-window nodes, N = 1k, 4k, 16k.

    .venv/bin/python bench/ingest_linear.py [--sizes 1000,4000,16000] [--embedder minilm-int8]

Each size is ingested into a fresh storage folder (sentence_window only). The index build (FAISS,
docstore, BM25, persisted) is timed apart from parsing + embedding, by wrapping the store's
``_build``; a linear build has a constant time per node across sizes. Before the fix, the build
step alone took 5 s for 1,000 nodes, 19 s for 2,000 and 73 s for 4,000 (quadratic).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402

WORDS = ("valve pump filter sensor pressure flow meter alarm reset cycle tank motor relay circuit fuse "
         "panel cable port switch mode").split()


def sentences(n: int) -> list[str]:
    out = []
    for i in range(n):
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i * 7) % len(WORDS)], WORDS[(i * 13) % len(WORDS)]
        out.append(f"Unit {i} checks the {a} and the {b} before the {c} starts.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,4000,16000")
    parser.add_argument("--embedder", default="minilm-int8", help="a fast embedder keeps the run short")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfs import make_pdf

    from rag.config import Config
    from rag.ingest.sync import sync
    from rag.retrieval.spec import RetrieverSpec
    from rag.stores.backends.local import IndexStore

    rows = []
    work = Path(tempfile.mkdtemp(prefix="rag-bench-linear-"))
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            folder = work / f"pdf-{n}"
            text = sentences(n)
            make_pdf(folder / f"long-{n}.pdf", [" ".join(text[i:i + 40]) for i in range(0, n, 40)])
            config = Config(storage_dir=work / f"storage-{n}", embed_model=args.embedder)
            store = IndexStore(config)
            spent = {"build": 0.0, "build_cpu": 0.0}
            original = store._build

            def timed_build(*a, **k):
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    return original(*a, **k)
                finally:
                    spent["build"] += time.perf_counter() - start
                    spent["build_cpu"] += time.process_time() - cpu

            store._build = timed_build
            spec = RetrieverSpec.parse("sentence_window", config).parser_spec
            log(f"ingesting {n} sentences")
            start, cpu = time.perf_counter(), time.process_time()
            report = sync(store, folder, [spec], progress=False)
            total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
            nodes = report.indexes["sentence_window"]["nodes"]
            rows.append({"sentences": n, "nodes": nodes, "pages": report.pages, "total_s": round(total, 1),
                         "total_cpu_s": round(total_cpu, 1), "build_s": round(spent["build"], 2),
                         "build_cpu_s": round(spent["build_cpu"], 2),
                         "build_ms_per_node": round(1000 * spent["build_cpu"] / nodes, 3)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload {machine_state()['loadavg']}\n")
    print("sentences | nodes | pages | ingest wall s | ingest CPU s | build wall s | build CPU s | build CPU ms / node")
    print("--- | --- | --- | --- | --- | --- | --- | ---")
    for r in rows:
        print(f"{r['sentences']} | {r['nodes']} | {r['pages']} | {r['total_s']} | {r['total_cpu_s']} | {r['build_s']} | "
              f"{r['build_cpu_s']} | {r['build_ms_per_node']}")
    write_results(ROOT / "bench" / "results" / "ingest_linear.json", {"machine": machine_state(), "rows": rows})


if __name__ == "__main__":
    main()
