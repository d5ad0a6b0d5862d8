"""Stage 3: embed nodes and keep one persisted FAISS index per retriever spec.

Layout of ``storage_dir``::

    manifest.json                 what is current: files, hashes, models, indexes (the commit point)
    cache/documents/<file>.json   extracted text per PDF version
    cache/nodes/<spec>/<file>.*   parsed nodes + their vectors per PDF version and spec
    indexes/<id>/                 LlamaIndex storage (docstore, FAISS vectors), immutable

Every file is written to a temporary name and renamed into place, and ``manifest.json`` is
replaced last, so a crash or Ctrl-C at any point leaves the previous index intact.
Caches make re-ingestion incremental: unchanged PDFs are neither read nor embedded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from rag.config import Config
from rag.durable import fsync_dir, fsync_tree
from rag.embedding import embed_texts, embedding_model
from rag.errors import IndexMissingError, InputError, UnreadablePdfError
from rag.ingest.parse import ParsedNodes, ParserSpec, parse
from rag.ingest.pdf import TEXT_FORMAT, file_sha256, find_pdfs, read_pdf
from rag.retrieval.bm25 import Bm25Index
from rag.stores import Store
from rag.stores.lock import writer_lock
from rag.stores.node_vectors import NodeVectors
from rag.types import IngestReport, PdfText, Skipped

FORMAT = 1
# What this store writes at the top of its folder; anything else there belongs to someone else.
OWN_NAMES = {"manifest.json", "cache", "indexes", ".lock", "evaluations.sqlite", "results", "dashboard.log"}
INDEX_DIR = re.compile(r"[0-9a-f]{16}")  # indexes/<id>
CACHE_FILE = re.compile(r"\.?[0-9a-f]{32}-[0-9a-f]{8}\.(?:json|npy)(?:\..+)?")  # <file key>.<ext>, or a temporary of it
READER_LOCK_WAIT_S = 600.0  # a query that needs a new index waits this long for a running ingest
GROUP_TEXTS = 2048  # texts embedded between two cache writes: the most an interrupted ingest redoes
EMBED_TEXT = "embed"  # llama_index MetadataMode.EMBED: the text a node's vector was made from
VECTORS_FILE = "vectors.npy"  # the embedded nodes' vectors in BM25 id order, for millisecond reranking


def _progress(iterable: Iterable | None, show: bool, **kwargs):
    """``iterable`` wrapped in a progress bar when ``show``; with ``iterable=None``, a bar to update (or None)."""
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()


class IndexStore:
    """The persisted indexes of one storage folder."""

    def __init__(self, config: Config):
        self.config = config
        self.root = Path(config.storage_dir)

    # ------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as exc:
            raise IndexMissingError(f"{self.manifest_path} is damaged ({type(exc).__name__}): re-run "
                                    "`rag ingest PATH` to rebuild it (cached text and vectors are reused).") from None
        if not isinstance(manifest, dict) or not {"files", "indexes", "embed_model"} <= set(manifest):
            raise IndexMissingError(f"{self.manifest_path} is damaged (fields missing): re-run `rag ingest PATH` "
                                    "to rebuild it (cached text and vectors are reused).")
        return manifest

    def _require_manifest(self) -> dict[str, Any]:
        manifest = self.manifest()
        if manifest is None:
            raise IndexMissingError(
                f"No index in {self.root.resolve()}: run `rag ingest PATH` first (or set RAG_STORAGE_DIR)."
            )
        if manifest["embed_model"] != self.config.embed_model:
            raise IndexMissingError(
                f"The index in {self.root} was built with embedding model {manifest['embed_model']!r}, "
                f"but {self.config.embed_model!r} is configured. Re-run `rag ingest PATH` to rebuild it, "
                f"or set RAG_EMBED_MODEL={manifest['embed_model']}."
            )
        return manifest

    def _file_key(self, name: str, sha: str) -> str:
        return f"{sha[:32]}-{_digest(name)[:8]}"

    def _embed_id(self) -> str:
        return _digest(self.config.embed_model)[:8]

    # ------------------------------------------------------------ ingest
    def sync(self, path: str | Path, specs: list[ParserSpec], progress: bool = True) -> IngestReport:
        """Make the indexes mirror the PDFs under ``path``; only new or changed files are processed."""
        started = time.perf_counter()
        report = IngestReport()
        candidates, report.skipped = find_pdfs(path)
        self._refuse_foreign_folder()
        with writer_lock(self.root, self.config.lock_timeout):
            return self._sync(path, candidates, report, specs, progress, started)

    def _sync(self, path: str | Path, candidates: list[tuple[Path, str]], report: IngestReport,
              specs: list[ParserSpec], progress: bool, started: float) -> IngestReport:
        self._remove_stale_temporaries()
        try:
            old = self.manifest()
        except IndexMissingError:
            old = None
            report.messages.append(f"{self.manifest_path} was damaged: rebuilding it from the caches.")
        specs = self._specs_to_maintain(specs, old, report)
        reuse_text = old is not None and old.get("text_format") == TEXT_FORMAT
        if old is not None and not reuse_text:
            report.messages.append("PDF text extraction changed since this index was built: reading every PDF again.")
        documents = self._read_documents(candidates, (old or {}).get("files", {}), report, progress, reuse_text)
        if not documents:
            raise InputError(
                f"{path}: none of the PDFs could be ingested; the existing index was left as it was.\n"
                + "\n".join(f"  {s}" for s in report.skipped)
            )
        report.removed = sorted(set((old or {}).get("files", {})) - {d.name for d in documents})
        indexes = {}
        for spec in specs:
            entry = self._ensure_index(spec, documents, report, progress)
            entry["default"] = not _is_extra(spec, old)
            indexes[spec.key] = entry
        manifest = self._manifest_of(path, documents, indexes)
        if manifest_changed := (old is None or _comparable(old) != _comparable(manifest)):
            _write_atomic(self.manifest_path, json.dumps(manifest, indent=2).encode())
        self._collect_garbage(manifest)
        report.indexes = {e["kind"]: e for e in indexes.values() if e["default"]}
        report.seconds = time.perf_counter() - started
        if not manifest_changed:
            report.messages.append(f"Nothing changed: {len(documents)} PDF(s) already indexed.")
        return report

    def _specs_to_maintain(self, specs: list[ParserSpec], old: dict[str, Any] | None,
                           report: IngestReport) -> list[ParserSpec]:
        """The default specs plus those built on demand earlier; says which indexes get rebuilt and why."""
        if not old:
            return specs
        if old["embed_model"] != self.config.embed_model:
            report.messages.append(
                f"Embedding model changed from {old['embed_model']!r} to {self.config.embed_model!r}: "
                "rebuilding every index."
            )
        old_specs = {v["kind"]: v for v in old["indexes"].values() if v.get("default")}
        for spec in specs:
            before = old_specs.get(spec.kind)
            if before and before["params"] != spec.as_dict():
                report.messages.append(
                    f"Parser parameters of {spec.kind} changed ({_changed(before['params'], spec.as_dict())}): "
                    "rebuilding that index."
                )
        default_keys = {s.key for s in specs}
        return specs + [ParserSpec.of(v["kind"], {k: x for k, x in v["params"].items() if k != "kind"})
                        for k, v in old["indexes"].items() if not v.get("default") and k not in default_keys]

    def _read_documents(self, candidates: list[tuple[Path, str]], old_files: dict[str, Any],
                        report: IngestReport, progress: bool, reuse_text: bool = True) -> list[PdfText]:
        documents: list[PdfText] = []
        for file, name in _progress(candidates, progress, desc="Reading PDFs", unit="file"):
            try:
                pdf = self._document(file, name, reuse_text)
            except UnreadablePdfError as exc:
                report.skipped.append(Skipped(name, exc.reason))
                continue
            documents.append(pdf)
            previous = old_files.get(name, {}).get("sha256")
            (report.unchanged if previous == pdf.sha256 else report.changed if previous else report.added).append(name)
            report.pages += pdf.pages
        return documents

    def _manifest_of(self, path: str | Path, documents: list[PdfText], indexes: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "text_format": TEXT_FORMAT,
            "embed_model": self.config.embed_model,
            "embed_dim": next(iter(indexes.values()))["dim"],
            "source": str(Path(path).resolve()),
            "files": {d.name: {"sha256": d.sha256, "pages": d.pages} for d in documents},
            "indexes": indexes,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def ensure_index(self, spec: ParserSpec, progress: bool = True) -> dict[str, Any]:
        """The manifest entry of ``spec``, building that index from the cached documents if needed."""
        manifest = self._require_manifest()
        if spec.key in manifest["indexes"] and (self.root / manifest["indexes"][spec.key]["dir"]).is_dir():
            return manifest["indexes"][spec.key]
        # A new index is a write: wait for any ingest, then start from the manifest as it is now,
        # so what that ingest committed is never overwritten with an older copy.
        with writer_lock(self.root, max(self.config.lock_timeout, READER_LOCK_WAIT_S)):
            return self._add_index(spec, progress)

    def _add_index(self, spec: ParserSpec, progress: bool) -> dict[str, Any]:
        manifest = self._require_manifest()
        if spec.key in manifest["indexes"] and (self.root / manifest["indexes"][spec.key]["dir"]).is_dir():
            return manifest["indexes"][spec.key]  # built by another process while we waited
        if manifest.get("text_format") != TEXT_FORMAT:  # its cached texts are an older extraction's
            raise IndexMissingError(f"The index in {self.root} was built from text extracted by an older version: "
                                    "re-run `rag ingest PATH` to update it.")
        documents = []
        for name, info in manifest["files"].items():
            cached = self._document_cache(name, info["sha256"])
            if not cached.is_file():
                raise IndexMissingError(f"The cached text of {name} is missing: re-run `rag ingest PATH`.")
            documents.append(PdfText.from_json(json.loads(cached.read_text())))
        entry = self._ensure_index(spec, documents, IngestReport(), progress)
        entry["default"] = False
        manifest["indexes"][spec.key] = entry
        _write_atomic(self.manifest_path, json.dumps(manifest, indent=2).encode())
        return entry

    def load(self, spec: ParserSpec, progress: bool = False):
        """Load the persisted index of ``spec``: (VectorStoreIndex, StorageContext)."""
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.vector_stores.faiss import FaissVectorStore

        directory = self._index_dir(spec, progress)
        try:
            vector_store = FaissVectorStore.from_persist_dir(str(directory))
            storage = StorageContext.from_defaults(vector_store=vector_store, persist_dir=str(directory))
            index = load_index_from_storage(storage, embed_model=embedding_model(self.config))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:  # JSON / FAISS read errors
            raise self._damaged(directory, exc) from None
        return index, storage

    def lexical(self, spec: ParserSpec) -> Bm25Index:
        """The BM25 index of the embedded nodes of ``spec``'s index."""
        directory = self._index_dir(spec)
        if not (directory / "bm25").is_dir():  # built before BM25 was added: index the cached nodes now
            nodes = self._embedded_nodes(spec)
            return Bm25Index.build([n.node_id for n in nodes], [n.get_content(metadata_mode=EMBED_TEXT)
                                                                for n in nodes])
        try:
            return Bm25Index.load(directory / "bm25")
        except (OSError, ValueError) as exc:
            raise self._damaged(directory, exc) from None

    def node_vectors(self, spec: ParserSpec) -> NodeVectors | None:
        """The stored vectors of the embedded nodes (memory-mapped), or None for an index built without them."""
        import numpy as np

        directory = self._index_dir(spec)
        if not (directory / VECTORS_FILE).is_file():
            return None
        ids = Bm25Index.saved_ids(directory / "bm25")  # the vectors are saved in the same order
        return NodeVectors(ids, np.load(directory / VECTORS_FILE, mmap_mode="r"))

    def _index_dir(self, spec: ParserSpec, progress: bool = False) -> Path:
        return self.root / self.ensure_index(spec, progress=progress)["dir"]

    def _embedded_nodes(self, spec: ParserSpec) -> list[Any]:
        manifest = self._require_manifest()
        nodes = []
        for name, info in manifest["files"].items():
            parsed = self._parsed(spec, PdfText(name=name, sha256=info["sha256"], text=""))
            if parsed is None:
                raise IndexMissingError(f"The cached nodes of {name} are missing: re-run `rag ingest PATH`.")
            nodes.extend(n for n, e in zip(parsed[0].nodes, parsed[0].embed) if e)
        return nodes

    def _damaged(self, directory: Path, exc: Exception) -> IndexMissingError:
        return IndexMissingError(f"The index in {directory} is damaged ({type(exc).__name__}): "
                                 "re-run `rag ingest PATH` to rebuild it.")

    # ------------------------------------------------------------ internals
    def _document(self, file: Path, name: str, reuse: bool = True) -> PdfText:
        cached = self._document_cache(name, file_sha256(file))
        if reuse and cached.is_file():
            return PdfText.from_json(json.loads(cached.read_text()))
        pdf = read_pdf(file, name)  # hashes the bytes it parsed: the file may have changed meanwhile
        _write_atomic(self._document_cache(name, pdf.sha256), json.dumps(pdf.to_json()).encode())
        return pdf

    def _document_cache(self, name: str, sha: str) -> Path:
        return self.root / "cache" / "documents" / f"{self._file_key(name, sha)}.json"

    def _nodes_dir(self, spec: ParserSpec) -> Path:
        return self.root / "cache" / "nodes" / f"{spec.key}-{self._embed_id()}"

    def _node_cache(self, spec: ParserSpec, pdf: PdfText) -> Path:
        return self._nodes_dir(spec) / self._file_key(pdf.name, pdf.sha256)

    def _is_cached(self, spec: ParserSpec, pdf: PdfText) -> bool:
        base = self._node_cache(spec, pdf)
        return base.with_suffix(".json").is_file() and base.with_suffix(".npy").is_file()

    def _parsed(self, spec: ParserSpec, pdf: PdfText) -> tuple[ParsedNodes, Any] | None:
        """Cached nodes and vectors of one document, or None."""
        import numpy as np
        from llama_index.core.storage.docstore.utils import json_to_doc

        if not self._is_cached(spec, pdf):
            return None
        base = self._node_cache(spec, pdf)
        data = json.loads(base.with_suffix(".json").read_text())
        nodes = [json_to_doc(d) for d in data["nodes"]]
        return ParsedNodes(nodes=nodes, embed=data["embed"]), np.load(base.with_suffix(".npy"))

    def _parse_and_embed(self, spec: ParserSpec, missing: list[PdfText], report: IngestReport, progress: bool):
        """Parse and embed documents not in the cache. Documents are embedded in groups of about
        ``GROUP_TEXTS`` texts and each group's cache is written when it is done, so an interrupted
        ingest resumes after the last finished group; the bar counts nodes and shows an ETA."""
        parsed = [parse(spec, pdf) for pdf in missing]
        counts = [sum(p.embed) for p in parsed]
        bar = _progress(None, progress, desc=f"Embedding {spec.kind}", unit="node", total=sum(counts),
                        postfix=f"{sum(d.pages for d in missing)} pages, {len(missing)} file(s)")
        group: list[int] = []
        for i, count in enumerate(counts):
            group.append(i)
            if sum(counts[j] for j in group) >= GROUP_TEXTS or i == len(counts) - 1:
                self._embed_group(spec, [missing[j] for j in group], [parsed[j] for j in group], bar)
                group = []
        report.embedded += sum(counts)
        if bar is not None:
            bar.close()

    def _embed_group(self, spec: ParserSpec, documents: list[PdfText], parsed: list[ParsedNodes], bar: Any) -> None:
        import io

        import numpy as np
        from llama_index.core.storage.docstore.utils import doc_to_json

        texts = [n.get_content(metadata_mode=EMBED_TEXT) for p in parsed for n, e in zip(p.nodes, p.embed) if e]
        # Batches of similar length waste little work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batch = self.config.embed_batch_size
        vectors = np.zeros((len(texts), 0), dtype="float32")
        for start in range(0, len(texts), batch):
            ids = order[start:start + batch]
            chunk = embed_texts(self.config, [texts[i] for i in ids])
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), chunk.shape[1]), dtype="float32")
            vectors[ids] = chunk
            if bar is not None:
                bar.update(len(ids))
        offset = 0
        for pdf, p in zip(documents, parsed):
            count = sum(p.embed)
            base = self._node_cache(spec, pdf)
            buffer = io.BytesIO()
            np.save(buffer, vectors[offset:offset + count])
            offset += count
            _write_atomic(base.with_suffix(".npy"), buffer.getvalue())
            payload = {"nodes": [doc_to_json(n) for n in p.nodes], "embed": p.embed}
            _write_atomic(base.with_suffix(".json"), json.dumps(payload).encode())

    def _ensure_index(self, spec: ParserSpec, documents: list[PdfText], report: IngestReport,
                      progress: bool) -> dict[str, Any]:
        missing = [d for d in documents if not self._is_cached(spec, d)]
        if missing:
            self._parse_and_embed(spec, missing, report, progress)
        index_id = _digest(spec.key, self.config.embed_model, sorted((d.name, d.sha256) for d in documents))[:16]
        directory = self.root / "indexes" / index_id
        if directory.is_dir() and not _intact(directory):
            report.messages.append(f"The {spec.kind} index in {directory} was damaged: rebuilding it.")
            shutil.rmtree(directory)
        if not directory.is_dir():
            stats = self._build(spec, documents, directory)
        else:
            stats = {k: v for k, v in json.loads((directory / "stats.json").read_text()).items()
                     if k not in ("sizes", "files")}
        return {"kind": spec.kind, "params": spec.as_dict(), "dir": f"indexes/{index_id}", **stats}

    def _build(self, spec: ParserSpec, documents: list[PdfText], directory: Path) -> dict[str, Any]:
        import faiss
        import numpy as np
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import NodeRelationship
        from llama_index.vector_stores.faiss import FaissVectorStore

        all_nodes, embedded, vectors = [], [], []
        for pdf in documents:
            parsed, matrix = self._parsed(spec, pdf)
            all_nodes.extend(parsed.nodes)
            embedded.extend(n for n, e in zip(parsed.nodes, parsed.embed) if e)
            vectors.append(matrix)
        matrix = np.concatenate(vectors).astype("float32")
        for node in all_nodes:
            # LlamaIndex's docstore rewrites a source document's whole node list on every node it adds:
            # quadratic in nodes per PDF. Nothing here looks nodes up by source document (files are
            # tracked by the manifest), so the link is dropped.
            node.relationships.pop(NodeRelationship.SOURCE, None)
        for node, vector in zip(embedded, matrix):
            node.embedding = vector.tolist()
        dim = int(matrix.shape[1])
        # Inner product on normalised vectors: scores are cosine similarities.
        storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(dim)))
        VectorStoreIndex(embedded, storage_context=storage, embed_model=embedding_model(self.config))
        for node in all_nodes:
            node.embedding = None  # vectors live in FAISS; keep them out of the docstore JSON
        stored = {n.node_id for n in embedded}
        # auto-merging needs the parents in the docstore too (the index added the embedded nodes)
        storage.docstore.add_documents([n for n in all_nodes if n.node_id not in stored])
        stats = {"dim": dim, "nodes": len(all_nodes), "vectors": len(embedded)}
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-index-"))
        try:
            storage.persist(persist_dir=str(tmp))
            ids = [n.node_id for n in embedded]
            np.save(tmp / VECTORS_FILE, matrix)
            Bm25Index.build(ids, [n.get_content(metadata_mode=EMBED_TEXT) for n in embedded]).save(tmp / "bm25")
            stats["sizes"] = _sizes(tmp)
            (tmp / "stats.json").write_text(json.dumps(stats))
            fsync_tree(tmp)  # the index is on disk before the manifest that points at it
            directory.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(directory)
            fsync_dir(directory.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {k: v for k, v in stats.items() if k != "sizes"}

    def _remove_stale_temporaries(self) -> None:
        """Half-built indexes of a killed run (only our own temporary names; we hold the lock)."""
        for tmp in self.root.glob(".tmp-index-*"):
            shutil.rmtree(tmp, ignore_errors=True)

    def _collect_garbage(self, manifest: dict[str, Any]) -> None:
        """Delete our indexes and caches that the manifest no longer refers to; never anything else."""
        keep_dirs = {self.root / e["dir"] for e in manifest["indexes"].values()}
        for directory in (self.root / "indexes").glob("*"):
            if directory not in keep_dirs and INDEX_DIR.fullmatch(directory.name) and (directory / "stats.json").is_file():
                shutil.rmtree(directory, ignore_errors=True)
        keep_files = {self._file_key(n, f["sha256"]) for n, f in manifest["files"].items()}
        for cached in (self.root / "cache").rglob("*.*"):
            if CACHE_FILE.fullmatch(cached.name) and cached.name.split(".")[0] not in keep_files:
                cached.unlink(missing_ok=True)

    def _refuse_foreign_folder(self) -> None:
        """A folder without our manifest that holds other things is not ours to write in."""
        if not self.root.is_dir() or self.manifest_path.exists():
            if self.root.exists() and not self.root.is_dir():
                raise InputError(f"storage_dir {self.root} is a file: give a folder (RAG_STORAGE_DIR).")
            return
        foreign = sorted(p.name for p in self.root.iterdir() if p.name not in OWN_NAMES
                         and not p.name.startswith(".tmp-index-"))
        if foreign:
            raise InputError(
                f"storage_dir {self.root.resolve()} is not empty and holds no index ({foreign[0]!r} ...): "
                "give a new or empty folder (RAG_STORAGE_DIR); ingest never writes among other files."
            )


def _sizes(directory: Path) -> dict[str, int]:
    """Byte size of every file under ``directory`` (relative names): cheap to record and to check."""
    return {str(p.relative_to(directory)): p.stat().st_size for p in sorted(directory.rglob("*")) if p.is_file()}


def _intact(directory: Path) -> bool:
    """Every file of the index folder is there with the size it was built with (old indexes pass)."""
    try:
        expected = json.loads((directory / "stats.json").read_text()).get("sizes")
    except (OSError, ValueError):
        return False
    if expected is None:
        return True  # built before sizes were recorded
    for name, size in expected.items():
        file = directory / name
        if not file.is_file() or file.stat().st_size != size:
            return False
    return True


def _comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in ("updated", "source")}


def _changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in after if before.get(k) != after.get(k))


def _is_extra(spec: ParserSpec, old: dict[str, Any] | None) -> bool:
    """An index that was built on demand for non-default parameters."""
    return bool(old) and spec.key in old["indexes"] and not old["indexes"][spec.key].get("default")


PLUGIN = Store(name="local", help="FAISS + JSON files in storage_dir (default)", open=IndexStore, order=0)
