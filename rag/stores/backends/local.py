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

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from rag.config import Config
from rag.durable import fsync_dir, fsync_tree
from rag.embedding import embedding_model
from rag.errors import IndexMissingError, InputError
from rag.retrieval.bm25 import Bm25Index
from rag.retrieval.nodes import ParsedNodes, ParserSpec, embedded_text
from rag.stores import StorePlugin, model_mismatch
from rag.stores.base import FileVersion, StoredNodes
from rag.stores.lock import writer_lock
from rag.stores.node_vectors import NodeVectors
from rag.types import TEXT_FORMAT, IngestReport, PdfText

FORMAT = 1
# What this store writes at the top of its folder; anything else there belongs to someone else.
OWN_NAMES = {"manifest.json", "cache", "indexes", ".lock", "evaluations.sqlite", "results", "dashboard.log"}
INDEX_DIR = re.compile(r"[0-9a-f]{16}")  # indexes/<id>
CACHE_FILE = re.compile(r"\.?[0-9a-f]{32}-[0-9a-f]{8}\.(?:json|npy)(?:\..+)?")  # <file key>.<ext>, or a temporary of it
VECTORS_FILE = "vectors.npy"  # the embedded nodes' vectors in BM25 id order, for millisecond reranking


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
    """The persisted indexes of one storage folder (a ``rag.stores.base.Store``)."""

    def __init__(self, config: Config):
        self.config = config
        self.root = Path(config.storage_dir)

    def where(self) -> str:
        return str(self.root.resolve())

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

    def require_manifest(self) -> dict[str, Any]:
        manifest = self.manifest()
        if manifest is None:
            raise IndexMissingError(
                f"No index in {self.root.resolve()}: run `rag ingest PATH` first (or set RAG_STORAGE_DIR)."
            )
        if manifest["embed_model"] != self.config.embed_model:
            raise model_mismatch(str(self.root), manifest["embed_model"], self.config.embed_model)
        return manifest

    def index_entry(self, spec: ParserSpec) -> dict[str, Any] | None:
        entry = self.require_manifest()["indexes"].get(spec.key)
        return entry if entry is not None and (self.root / entry["dir"]).is_dir() else None

    def _file_key(self, name: str, sha: str) -> str:
        return f"{sha[:32]}-{_digest(name)[:8]}"

    def _embed_id(self) -> str:
        return _digest(self.config.embed_model)[:8]

    # ------------------------------------------------------------ writing
    @contextlib.contextmanager
    def writer(self, wait_s: float) -> Iterator["LocalWriter"]:
        """The folder's writer lock (``rag.stores.lock``), in a folder that is ours to write in."""
        self._refuse_foreign_folder()
        with writer_lock(self.root, wait_s):
            self._remove_stale_temporaries()
            yield LocalWriter(self)

    def reset(self, everything: bool = False, confirm: Callable[[str], bool] | None = None) -> str:
        root = self.root
        if root.is_dir() and not self.manifest_path.exists() and not everything:
            return f"Nothing to reset: no index in {root.resolve()}."
        owned = _own_files(root, everything)
        if not owned:
            return f"Nothing to reset in {root.resolve()}."
        listing = ", ".join(sorted({p.relative_to(root).parts[0] + ("/" if p.relative_to(root).parts[1:] else "")
                                    for p in owned}, key=lambda n: (n != "manifest.json", n)))
        if confirm is not None and not confirm(f"{listing} in {root.resolve()}"):
            return "Nothing deleted."
        with writer_lock(root, self.config.lock_timeout):  # never under a running ingest
            for path in sorted(owned, key=lambda p: p.name != "manifest.json"):  # the manifest first: no index
                path.unlink(missing_ok=True)
            for folder in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                if not any(folder.iterdir()):
                    folder.rmdir()
        left = [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
        if not left:  # nothing of anyone's left: leave no trace
            (root / ".lock").unlink(missing_ok=True)
            root.rmdir()
        runs = set(_own_files(root, evaluations=True)) if left else set()
        foreign = sorted(str(p.relative_to(root)) for p in left if p not in runs)
        return (f"Deleted {listing} in {root.resolve()}."
                + (" Kept the evaluation runs (--all deletes them)." if runs else "")
                + (f" Kept {len(foreign)} file(s) that are not the store's: {', '.join(foreign[:3])}." if foreign else ""))

    def stored_text(self, name: str, sha256: str) -> PdfText | None:
        cached = self._document_cache(name, sha256)
        return PdfText.from_json(json.loads(cached.read_text())) if cached.is_file() else None

    def stored_nodes(self, spec: ParserSpec, document: FileVersion) -> StoredNodes | None:
        """Cached nodes and vectors of one document, or None."""
        import numpy as np
        from llama_index.core.storage.docstore.utils import json_to_doc

        if not self._is_cached(spec, document):
            return None
        base = self._node_cache(spec, document)
        data = json.loads(base.with_suffix(".json").read_text())
        nodes = [json_to_doc(d) for d in data["nodes"]]
        return StoredNodes(ParsedNodes(nodes=nodes, embed=data["embed"]), np.load(base.with_suffix(".npy")))

    def load(self, spec: ParserSpec, progress: bool = False):
        """Load the persisted index of ``spec``: (VectorStoreIndex, StorageContext)."""
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.vector_stores.faiss import FaissVectorStore

        directory = self._index_dir(spec)
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
            return Bm25Index.build([n.node_id for n in nodes], [embedded_text(n) for n in nodes])
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

    def _index_dir(self, spec: ParserSpec) -> Path:
        entry = self.index_entry(spec)
        if entry is None:
            raise IndexMissingError(f"No {spec.kind} index for {spec.key} in {self.root.resolve()}: "
                                    "run `rag ingest PATH` first.")
        return self.root / entry["dir"]

    def _embedded_nodes(self, spec: ParserSpec) -> list[Any]:
        manifest = self.require_manifest()
        nodes = []
        for name, info in manifest["files"].items():
            stored = self.stored_nodes(spec, FileVersion(name, info["sha256"], info["pages"]))
            if stored is None:
                raise IndexMissingError(f"The cached nodes of {name} are missing: re-run `rag ingest PATH`.")
            nodes.extend(n for n, e in zip(stored.parsed.nodes, stored.parsed.embed) if e)
        return nodes

    def _damaged(self, directory: Path, exc: Exception) -> IndexMissingError:
        return IndexMissingError(f"The index in {directory} is damaged ({type(exc).__name__}): "
                                 "re-run `rag ingest PATH` to rebuild it.")

    # ------------------------------------------------------------ internals
    def _document_cache(self, name: str, sha: str) -> Path:
        return self.root / "cache" / "documents" / f"{self._file_key(name, sha)}.json"

    def _nodes_dir(self, spec: ParserSpec) -> Path:
        return self.root / "cache" / "nodes" / f"{spec.key}-{self._embed_id()}"

    def _node_cache(self, spec: ParserSpec, document: FileVersion) -> Path:
        return self._nodes_dir(spec) / self._file_key(document.name, document.sha256)

    def _is_cached(self, spec: ParserSpec, document: FileVersion) -> bool:
        base = self._node_cache(spec, document)
        return base.with_suffix(".json").is_file() and base.with_suffix(".npy").is_file()

    def _ensure_index(self, spec: ParserSpec, documents: list[FileVersion], report: IngestReport) -> dict[str, Any]:
        """The index of ``spec`` over ``documents``, built from the node caches unless it exists (intact)."""
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

    def _build(self, spec: ParserSpec, documents: list[FileVersion], directory: Path) -> dict[str, Any]:
        import faiss
        import numpy as np
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import NodeRelationship
        from llama_index.vector_stores.faiss import FaissVectorStore

        all_nodes, embedded, vectors = [], [], []
        for document in documents:
            cached = self.stored_nodes(spec, document)
            all_nodes.extend(cached.parsed.nodes)
            embedded.extend(n for n, e in zip(cached.parsed.nodes, cached.parsed.embed) if e)
            vectors.append(cached.vectors)
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
            Bm25Index.build(ids, [embedded_text(n) for n in embedded]).save(tmp / "bm25")
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


class LocalWriter:
    """Writes of one ingest under the folder's lock. Texts and nodes go to the caches at once
    (an interrupted ingest reuses them); ``manifest.json`` is replaced last: the commit point."""

    def __init__(self, store: IndexStore):
        self.store = store
        self.old: dict[str, Any] | None = None

    def previous(self, report: IngestReport) -> dict[str, Any] | None:
        try:
            self.old = self.store.manifest()
        except IndexMissingError:
            self.old = None
            report.messages.append(f"{self.store.manifest_path} was damaged: rebuilding it from the caches.")
        return self.old

    def texts_current(self, manifest: dict[str, Any]) -> bool:
        return manifest.get("text_format") == TEXT_FORMAT

    def keep_text(self, pdf: PdfText) -> None:
        _write_atomic(self.store._document_cache(pdf.name, pdf.sha256), json.dumps(pdf.to_json()).encode())

    def needs_nodes(self, spec: ParserSpec, documents: list[FileVersion], renewed: set[str]) -> list[FileVersion]:
        return [d for d in documents if not self.store._is_cached(spec, d)]  # caches are per file version

    def keep_nodes(self, spec: ParserSpec, document: FileVersion, nodes: StoredNodes) -> None:
        import io

        import numpy as np
        from llama_index.core.storage.docstore.utils import doc_to_json

        base = self.store._node_cache(spec, document)
        buffer = io.BytesIO()
        np.save(buffer, nodes.vectors)
        _write_atomic(base.with_suffix(".npy"), buffer.getvalue())
        payload = {"nodes": [doc_to_json(n) for n in nodes.parsed.nodes], "embed": nodes.parsed.embed}
        _write_atomic(base.with_suffix(".json"), json.dumps(payload).encode())

    def commit(self, documents: list[FileVersion], renewed: set[str], specs: list[ParserSpec],
               defaults: dict[str, bool], source: str | None, report: IngestReport) -> bool:
        indexes = {}
        for spec in specs:
            entry = self.store._ensure_index(spec, documents, report)
            entry["default"] = defaults[spec.key]
            indexes[spec.key] = entry
        manifest = self._manifest_of(source, documents, indexes)
        changed = self.old is None or _comparable(self.old) != _comparable(manifest)
        if changed:
            _write_atomic(self.store.manifest_path, json.dumps(manifest, indent=2).encode())
        self.store._collect_garbage(manifest)
        return changed

    def add_index(self, spec: ParserSpec, documents: list[FileVersion]) -> None:
        manifest = self.store.require_manifest()
        entry = self.store._ensure_index(spec, documents, IngestReport())
        entry["default"] = False
        manifest["indexes"][spec.key] = entry
        _write_atomic(self.store.manifest_path, json.dumps(manifest, indent=2).encode())

    def _manifest_of(self, source: str | None, documents: list[FileVersion], indexes: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "text_format": TEXT_FORMAT,
            "embed_model": self.store.config.embed_model,
            "embed_dim": next(iter(indexes.values()))["dim"],
            "source": source,
            "files": {d.name: {"sha256": d.sha256, "pages": d.pages} for d in documents},
            "indexes": indexes,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def _own_files(root: Path, evaluations: bool) -> list[Path]:
    """The files the store wrote in ``root``, by its own names (a user's file in there is not one)."""
    files = [root / "manifest.json"] if (root / "manifest.json").is_file() else []
    files += [f for f in (root / "cache").rglob("*") if f.is_file() and CACHE_FILE.fullmatch(f.name)]
    for directory in (root / "indexes").glob("*"):
        if INDEX_DIR.fullmatch(directory.name) and (directory / "stats.json").is_file():
            files += [f for f in directory.rglob("*") if f.is_file()]
    for tmp in root.glob(".tmp-index-*"):
        files += [f for f in tmp.rglob("*") if f.is_file()] if tmp.is_dir() else [tmp]
    if evaluations:
        files += [root / n for n in ("evaluations.sqlite", "dashboard.log") if (root / n).is_file()]
        files += [f for f in (root / "results").rglob("*") if f.is_file()]
    return files


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


PLUGIN = StorePlugin(name="local", help="FAISS + JSON files in storage_dir (default)", open=IndexStore, order=0)
