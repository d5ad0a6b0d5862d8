"""Stages 1-3 for every store: find the PDFs, see what changed since the store's manifest, read,
parse and embed only what is new, and hand it to the store to commit (``rag.stores.base``).

The store's writer lock is held from the first look at its manifest to the commit, so two ingests
never interleave; nothing is visible to readers before the store's commit.

Reading, parsing and embedding run on the configured executor (``rag.executors``: this process,
or Ray tasks across a cluster); their results come back here and this process alone hands them
to the store's writer, so the lock and the atomic commit are the same whatever the executor.
Embedding batches are the same on every executor, so the vectors are too.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from rag.embedding import embed_texts
from rag.errors import IndexMissingError, InputError, UnreadablePdfError
from rag.executors import Executor, TaskFailed, in_order, open_executor
from rag.executors.local import LocalExecutor
from rag.ingest.parse import parse
from rag.ingest.pdf import FOLDER_PASSWORD, PASSWORD_SUFFIX, file_sha256, find_pdfs, read_pdf
from rag.progress import progress_bar
from rag.retrieval.nodes import ParsedNodes, ParserSpec, embedded_text
from rag.stores.base import FileVersion, Store, StoredNodes, StoreWriter, spec_of
from rag.types import IngestReport, PdfText, Skipped

GROUP_TEXTS = 2048  # texts embedded between two hand-overs to the store: the most an interrupted ingest redoes
READER_LOCK_WAIT_S = 600.0  # a query that needs a new index waits this long for a running ingest
BATCHES_PER_TASK = 8  # embedding batches per task on a remote executor: enough work to be worth sending


def sync(store: Store, path: str | Path, specs: list[ParserSpec], progress: bool = True) -> IngestReport:
    """Make the store's indexes of ``specs`` mirror the PDFs under ``path``; only new or changed
    files are read and embedded."""
    started = time.perf_counter()
    report = IngestReport()
    candidates, report.skipped = find_pdfs(path)
    with open_executor(store.config) as executor, store.writer(store.config.lock_timeout) as writer:
        old = writer.previous(report)
        specs = _specs_to_maintain(store.config.embed_model, specs, old, report)
        texts_current = old is None or writer.texts_current(old)
        if not texts_current:
            report.messages.append("PDF text extraction changed since this index was built: reading every PDF again.")
        old_files = (old or {}).get("files", {})
        documents = _read(store, writer, candidates, old_files, report, progress, texts_current, executor)
        if not documents:
            raise InputError(
                f"{path}: none of the PDFs could be ingested; the existing index was left as it was.\n"
                + "\n".join(f"  {s}" for s in report.skipped)
            )
        report.removed = sorted(set(old_files) - {d.name for d in documents})
        renewed = {d.name for d in documents
                   if not texts_current or old_files.get(d.name, {}).get("sha256") != d.sha256}
        for spec in specs:
            _embed(store, writer, spec, writer.needs_nodes(spec, documents, renewed), report, progress, executor)
        defaults = {s.key: not _is_extra(s, old) for s in specs}
        changed = writer.commit(documents, renewed, specs, defaults, str(Path(path).resolve()), report)
        report.indexes = {e["kind"]: e for e in store.require_manifest()["indexes"].values() if e["default"]}
        if executor.remote:
            report.messages.append(executor.summary())
    report.seconds = time.perf_counter() - started
    if not changed:
        report.messages.append(f"Nothing changed: {len(documents)} PDF(s) already indexed.")
    return report


def ensure_index(store: Store, spec: ParserSpec, progress: bool = True) -> dict[str, Any]:
    """The manifest entry of ``spec``'s index, built from the stored texts if there is none yet
    (an index for parameters that no ingest built)."""
    entry = store.index_entry(spec)
    if entry is not None:
        return entry
    # A new index is a write: wait for any ingest, then start from the manifest as it is now,
    # so what that ingest committed is never overwritten with an older copy.
    with store.writer(max(store.config.lock_timeout, READER_LOCK_WAIT_S)) as writer:
        if store.index_entry(spec) is None:  # else: built by another process while we waited
            manifest = store.require_manifest()
            if not writer.texts_current(manifest):
                raise IndexMissingError(f"The index in {store.where()} was built from text extracted by an older "
                                        "version: re-run `rag ingest PATH` to update it.")
            documents = [FileVersion(name, f["sha256"], f["pages"]) for name, f in manifest["files"].items()]
            # In this process: a query that needs a new index does not start a cluster.
            _embed(store, writer, spec, writer.needs_nodes(spec, documents, set()), IngestReport(), progress,
                   LocalExecutor())
            writer.add_index(spec, documents)
    return store.require_manifest()["indexes"][spec.key]


def copy_index(source: Store, dest: Store) -> dict[str, Any]:
    """Copy every index of ``source`` into the empty store ``dest`` without embedding anything;
    returns what was copied (per index: kind, nodes, vectors)."""
    manifest = source.require_manifest()
    copied = {}
    with dest.writer(dest.config.lock_timeout) as writer:
        if writer.previous(IngestReport()) is not None:
            raise InputError(f"{dest.where()} already holds an index: migrate into an empty database.")
        # A text the source lacks stays missing: only an index for new parameters needs it, and asks for a re-ingest.
        documents = [FileVersion(name, f["sha256"], f["pages"], text=source.stored_text(name, f["sha256"]))
                     for name, f in manifest["files"].items()]
        for document in documents:
            if document.text is not None:
                writer.keep_text(document.text)
        specs = [spec_of(entry) for entry in manifest["indexes"].values()]
        for spec in specs:
            nodes = vectors = 0
            for document in documents:
                stored = source.stored_nodes(spec, document)
                if stored is None:
                    raise IndexMissingError(f"The stored nodes of {document.name} are missing in {source.where()}: "
                                            "re-run `rag ingest PATH` before migrating.")
                writer.keep_nodes(spec, document, stored)
                nodes, vectors = nodes + len(stored.parsed.nodes), vectors + sum(stored.parsed.embed)
            copied[spec.key] = {"kind": spec.kind, "nodes": nodes, "vectors": vectors}
        defaults = {key: entry.get("default", True) for key, entry in manifest["indexes"].items()}
        writer.commit(documents, {d.name for d in documents}, specs, defaults, manifest.get("source"), IngestReport())
    return {"files": len(documents), "indexes": copied}


def _specs_to_maintain(embed_model: str, specs: list[ParserSpec], old: dict[str, Any] | None,
                       report: IngestReport) -> list[ParserSpec]:
    """The default specs plus those built on demand earlier; says which indexes get rebuilt and why."""
    if not old:
        return specs
    if old["embed_model"] != embed_model:
        report.messages.append(f"Embedding model changed from {old['embed_model']!r} to {embed_model!r}: "
                               "rebuilding every index.")
    defaults = {e["kind"]: e["params"] for e in old["indexes"].values() if e.get("default")}
    for spec in specs:
        before, after = defaults.get(spec.kind), spec.as_dict()
        if before is not None and before != after:
            changes = ", ".join(f"{k}: {before.get(k)} -> {v}" for k, v in after.items() if before.get(k) != v)
            report.messages.append(f"Parser parameters of {spec.kind} changed ({changes}): rebuilding that index.")
    keys = {s.key for s in specs}
    return specs + [spec_of(e) for k, e in old["indexes"].items() if not e.get("default") and k not in keys]


def _is_extra(spec: ParserSpec, old: dict[str, Any] | None) -> bool:
    """An index that was built on demand for non-default parameters."""
    return bool(old) and spec.key in old["indexes"] and not old["indexes"][spec.key].get("default")


@dataclass
class PdfSource:
    """A PDF to read: by its path on this machine, or with its bytes and its password files for a
    worker on another machine (``contents``: file name -> bytes)."""

    file: Path
    name: str
    contents: dict[str, bytes] | None = None


def pdf_source(file: Path, name: str, ship: bool) -> PdfSource:
    if not ship:
        return PdfSource(file, name)
    contents = {}
    for candidate in (file, file.with_name(file.name + PASSWORD_SUFFIX), file.with_name(FOLDER_PASSWORD)):
        try:
            contents[candidate.name] = candidate.read_bytes()
        except OSError:
            if candidate == file:  # unreadable now: read_pdf reports why, by its path
                return PdfSource(file, name)
    return PdfSource(file, name, contents)


def read_source(source: PdfSource) -> PdfText | Skipped:
    """The PDF's text, or why it cannot be used (runs on the executor)."""
    try:
        if source.contents is None:
            return read_pdf(source.file, source.name)
        with tempfile.TemporaryDirectory(prefix="rag-pdf-") as folder:
            for file_name, data in source.contents.items():
                (Path(folder) / file_name).write_bytes(data)
            return read_pdf(Path(folder) / source.file.name, source.name)
    except UnreadablePdfError as exc:
        return Skipped(source.name, exc.reason)


def _read(store: Store, writer: StoreWriter, candidates: list[tuple[Path, str]], old_files: dict[str, Any],
          report: IngestReport, progress: bool, texts_current: bool, executor: Executor) -> list[FileVersion]:
    """Every usable PDF as a file version; new or changed ones read (or their text found in the store)."""
    slots: list[FileVersion | Skipped | None] = []  # one per candidate, in order
    to_read: list[int] = []
    for file, name in candidates:
        try:
            sha = file_sha256(file)
        except UnreadablePdfError as exc:
            slots.append(Skipped(name, exc.reason))
            continue
        if texts_current and sha == old_files.get(name, {}).get("sha256"):
            # unchanged: its text is read only if an index needs it
            slots.append(FileVersion(name, sha, old_files[name]["pages"], file=file))
            continue
        pdf = store.stored_text(name, sha) if texts_current else None
        slots.append(None if pdf is None else FileVersion(pdf.name, pdf.sha256, pdf.pages, text=pdf, file=file))
        if pdf is None:
            to_read.append(len(slots) - 1)
    bar = progress_bar(None, progress and bool(to_read), desc="Reading PDFs", unit="file", total=len(to_read))
    sources = [pdf_source(*candidates[i], ship=executor.remote) for i in to_read]
    # read_pdf hashes the bytes it parsed: the file may have changed since it was hashed above.
    for k, outcome in succeeded(executor.map(read_source, sources)):
        i = to_read[k]
        if isinstance(outcome, PdfText):
            writer.keep_text(outcome)
            outcome = FileVersion(outcome.name, outcome.sha256, outcome.pages, text=outcome, file=candidates[i][0])
        slots[i] = outcome
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    documents: list[FileVersion] = []
    for (file, name), slot in zip(candidates, slots):
        if isinstance(slot, Skipped):
            report.skipped.append(slot)
            continue
        assert slot is not None
        documents.append(slot)
        previous = old_files.get(name, {}).get("sha256")
        (report.unchanged if previous == slot.sha256 else report.changed if previous else report.added).append(name)
        report.pages += slot.pages
    return documents


def succeeded(outcomes: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The executor's outcomes; a task that failed for good stops the ingest (nothing is committed)."""
    for index, outcome in outcomes:
        if isinstance(outcome, TaskFailed):
            raise outcome
        yield index, outcome


def _text(store: Store, writer: StoreWriter, document: FileVersion) -> PdfText:
    """The text of a document: read this run, stored, or read again from its PDF."""
    if document.text is None:
        document.text = store.stored_text(document.name, document.sha256)
    if document.text is None:
        if document.file is None:
            raise IndexMissingError(f"The text of {document.name} is not in {store.where()}: re-run `rag ingest PATH`.")
        document.text = read_pdf(document.file, document.name)
        writer.keep_text(document.text)
    return document.text


def _embed(store: Store, writer: StoreWriter, spec: ParserSpec, documents: list[FileVersion],
           report: IngestReport, progress: bool, executor: Executor) -> None:
    """Parse and embed ``documents`` for ``spec`` and hand their nodes to the store. Documents are
    embedded in groups of about ``GROUP_TEXTS`` texts, each group handed over when it is done (a
    caching store then resumes an interrupted ingest after the last finished group)."""
    if not documents:
        return
    texts = [_text(store, writer, d) for d in documents]
    parsed = in_order(succeeded(executor.map(parse_for, texts, (spec,))), len(texts))
    counts = [sum(p.embed) for p in parsed]
    bar = progress_bar(None, progress, desc=f"Embedding {spec.kind}", unit="node", total=sum(counts),
                       postfix=f"{sum(d.pages for d in documents)} pages, {len(documents)} file(s)")
    group: list[int] = []
    for i in range(len(counts)):
        group.append(i)
        if sum(counts[j] for j in group) >= GROUP_TEXTS or i == len(counts) - 1:
            _embed_group(store, writer, spec, [documents[j] for j in group], [parsed[j] for j in group], bar,
                         executor)
            group = []
    report.embedded += sum(counts)
    if bar is not None:
        bar.close()


def parse_for(pdf: PdfText, spec: ParserSpec) -> ParsedNodes:
    """``parse`` with the document first, as an executor calls it (runs on the executor)."""
    return parse(spec, pdf)


def embed_batches(batches: list[list[str]], config: Any) -> list[Any]:
    """One embedding array per batch of texts (runs on the executor)."""
    return [embed_texts(config, batch) for batch in batches]


def _embed_group(store: Store, writer: StoreWriter, spec: ParserSpec, documents: list[FileVersion],
                 parsed: list[ParsedNodes], bar: Any, executor: Executor) -> None:
    import numpy as np

    texts = [embedded_text(n) for p in parsed for n, e in zip(p.nodes, p.embed) if e]
    # Batches of similar length waste little work on padding. The batches are the same on every
    # executor (only how many go in one task differs), so the vectors are identical.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    size = store.config.embed_batch_size
    batches = [order[start:start + size] for start in range(0, len(texts), size)]
    per_task = BATCHES_PER_TASK if executor.remote else 1
    tasks = [batches[start:start + per_task] for start in range(0, len(batches), per_task)]
    work = [[[texts[i] for i in batch] for batch in task] for task in tasks]
    vectors = np.zeros((len(texts), 0), dtype="float32")
    for k, arrays in succeeded(executor.map(embed_batches, work, (store.config,))):
        for ids, chunk in zip(tasks[k], arrays):
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), chunk.shape[1]), dtype="float32")
            vectors[ids] = chunk
            if bar is not None:
                bar.update(len(ids))
    offset = 0
    for document, p in zip(documents, parsed):
        count = sum(p.embed)
        writer.keep_nodes(spec, document, StoredNodes(p, vectors[offset:offset + count]))
        offset += count
