"""Cost of reading tables as rows at ingest: text extraction the old way (pypdf only) against the new
(``read_pdf``: pypdf, plus pdfplumber's table finder and pdfium's characters on pages with ruled grids), on the sample PDFs and real filings.

    .venv/bin/python bench/table_parsing.py [--pdfs FOLDER] [--filings "2023 Q1 AAPL.pdf,2023 Q1 NVDA.pdf"]
        [--repeat 3] [--ingest] [--markdown]

Per file, in this one process: wall and CPU seconds (``time.process_time``) of each way, median of
``--repeat`` runs, after pdfplumber has been imported once (its import time is shown on its own: a
process pays it once). ``--ingest`` also times a whole ingest (the default indexes, embedding
included) of the sample PDFs and of the first filing into fresh storage folders, old text against
new, to put parsing in proportion: embedding dominates.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, sec10q_paths, write_results  # noqa: E402

DEFAULT_FILINGS = "2023 Q1 AAPL.pdf,2023 Q1 NVDA.pdf"


def plain_read_pdf(path: Path, name: str, password: str | None = None):
    """What ``read_pdf`` did before tables: pypdf's ``extract_text()`` of each page, cleaned."""
    import pypdf

    from rag.ingest import pdf as P
    from rag.types import PdfText

    data = Path(path).read_bytes()
    with P._pypdf_limits(), P._QuietPypdf(name):
        reader = pypdf.PdfReader(io.BytesIO(data))
        texts = [P._clean(page.extract_text() or "") for page in reader.pages]
    text, starts = "", []
    for page_text in texts:
        if text:
            text += P.PAGE_SEPARATOR
        starts.append(len(text))
        text += page_text
    return PdfText(name=name, sha256=hashlib.sha256(data).hexdigest(), text=text, page_starts=starts)


def timed(ways: list, repeat: int) -> list[tuple[float, float, object]]:
    """(median wall s, median CPU s, last result) of each function in ``ways``, run in turns so that
    a change in the machine's load hits them alike."""
    runs: list[list[tuple[float, float, object]]] = [[] for _ in ways]
    for _ in range(repeat):
        for fn, out in zip(ways, runs):
            wall, cpu = time.perf_counter(), time.process_time()
            result = fn()
            out.append((time.perf_counter() - wall, time.process_time() - cpu, result))
    return [(statistics.median(r[0] for r in out), statistics.median(r[1] for r in out), out[-1][2]) for out in runs]


def searched_pages(path: Path) -> tuple[int, int]:
    """(pages that went through pdfplumber, tables written as rows) of one file."""
    from rag.ingest import pdf as P
    from rag.ingest import tables

    counts = {"searched": 0, "tables": 0}
    original = tables._splice

    def counting(scan, found, previous):
        text, placed = original(scan, found, previous)
        counts["searched"] += 1
        counts["tables"] += len(placed)
        return text, placed

    tables._splice = counting
    try:
        P.read_pdf(path, path.name)
    finally:
        tables._splice = original
    return counts["searched"], counts["tables"]


def whole_ingest(folder: Path, read) -> int:
    """One ingest of ``folder`` into a fresh store, text read by ``read``: the nodes embedded."""
    from rag import RAG, Config
    from rag.stores.backends import local

    saved = local.read_pdf
    local.read_pdf = read
    try:
        with tempfile.TemporaryDirectory() as storage:
            report = RAG(Config(storage_dir=Path(storage) / "s"), progress=False).ingest(folder, progress=False)
            return report.embedded
    finally:
        local.read_pdf = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", help="folder of the SEC 10-Q PDFs (default: ../shared/datasets/sec10q/pdfs)")
    parser.add_argument("--filings", default=DEFAULT_FILINGS, help=f"comma-separated file names (default {DEFAULT_FILINGS!r})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file and way; the median is shown (default 3)")
    parser.add_argument("--ingest", action="store_true", help="also time whole ingests, old text against new")
    parser.add_argument("--ingest-repeat", type=int, default=1, help="whole ingests per group and way (default 1)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "table_parsing.json"))
    args = parser.parse_args()

    folder, _ = sec10q_paths(args.pdfs, None)
    files = sorted((ROOT / "data").glob("*.pdf"))
    for name in [n.strip() for n in args.filings.split(",") if n.strip()]:
        if (folder / name).is_file():
            files.append(folder / name)
        else:
            log(f"skipped {folder / name}: not found")
    state = {"start": machine_state()}

    wall, cpu = time.perf_counter(), time.process_time()
    import pdfplumber.table  # noqa: F401  (what the first table costs a process, once)
    import pypdfium2  # noqa: F401
    import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu

    from rag.ingest.pdf import read_pdf

    rows = []
    for path in files:
        log(f"{path.name} ...")
        (old_wall, old_cpu, old), (new_wall, new_cpu, new) = timed(
            [lambda: plain_read_pdf(path, path.name), lambda: read_pdf(path, path.name)], args.repeat)
        searched, tables = searched_pages(path)
        rows.append({"file": path.name, "pages": new.pages, "searched": searched, "tables": tables,
                     "old_wall": old_wall, "old_cpu": old_cpu, "new_wall": new_wall, "new_cpu": new_cpu,
                     "chars_old": len(old.text), "chars_new": len(new.text)})

    header = ["file", "pages", "pages searched", "tables", "old wall s", "old CPU s", "new wall s", "new CPU s",
              "CPU x"]
    lines = [[r["file"], r["pages"], r["searched"], r["tables"], f"{r['old_wall']:.2f}", f"{r['old_cpu']:.2f}",
              f"{r['new_wall']:.2f}", f"{r['new_cpu']:.2f}", f"{r['new_cpu'] / max(r['old_cpu'], 1e-9):.2f}"]
             for r in rows]
    total_old, total_new = sum(r["old_cpu"] for r in rows), sum(r["new_cpu"] for r in rows)
    lines.append(["all", sum(r["pages"] for r in rows), sum(r["searched"] for r in rows),
                  sum(r["tables"] for r in rows), f"{sum(r['old_wall'] for r in rows):.2f}", f"{total_old:.2f}",
                  f"{sum(r['new_wall'] for r in rows):.2f}", f"{total_new:.2f}", f"{total_new / max(total_old, 1e-9):.2f}"])
    _print(header, lines, args.markdown)
    print(f"\npdfplumber + pypdfium2 import (once per process): {import_wall:.2f} s wall, {import_cpu:.2f} CPU s")

    ingests = []
    if args.ingest:
        import shutil

        with tempfile.TemporaryDirectory() as tmp:  # imports, the embedder, NLTK: before the clocks start
            shutil.copy(files[0], Path(tmp) / files[0].name)
            whole_ingest(Path(tmp), read_pdf)

        groups = [("3 sample PDFs", files[:3])] + ([(files[3].name, files[3:4])] if len(files) > 3 else [])
        for label, group in groups:
            with tempfile.TemporaryDirectory() as tmp:
                for path in group:
                    shutil.copy(path, Path(tmp) / path.name)
                log(f"whole ingest of {label} ...")
                (old_wall, old_cpu, embedded), (new_wall, new_cpu, embedded_new) = timed(
                    [lambda: whole_ingest(Path(tmp), plain_read_pdf), lambda: whole_ingest(Path(tmp), read_pdf)],
                    args.ingest_repeat)
            ingests.append({"files": label, "old_wall": old_wall, "old_cpu": old_cpu, "new_wall": new_wall,
                            "new_cpu": new_cpu, "embedded_old": embedded, "embedded_new": embedded_new})
        print()
        _print(["whole ingest", "nodes old / new", "old wall s", "old CPU s", "new wall s", "new CPU s", "CPU x"],
               [[i["files"], f"{i['embedded_old']} / {i['embedded_new']}", f"{i['old_wall']:.1f}",
                 f"{i['old_cpu']:.1f}", f"{i['new_wall']:.1f}", f"{i['new_cpu']:.1f}",
                 f"{i['new_cpu'] / max(i['old_cpu'], 1e-9):.2f}"] for i in ingests], args.markdown)
    state["end"] = machine_state()
    print(f"\nload average: start {state['start']['loadavg']}, end {state['end']['loadavg']}")
    write_results(args.json, {"extraction": rows, "pdfplumber_import": {"wall": import_wall, "cpu": import_cpu},
                              "ingest": ingests, "machine": state, "repeat": args.repeat})


def _print(header: list[str], rows: list[list], markdown: bool) -> None:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    if markdown:
        print("| " + " | ".join(cells[0]) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in cells[1:]:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
