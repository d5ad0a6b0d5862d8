"""``rag store migrate --to postgresql://...``: copy a local store into an empty PostgreSQL store
without re-embedding (nodes from the docstores, vectors read back from FAISS, texts from the cache)."""

from __future__ import annotations

import time
from typing import Any

from rag.errors import IndexMissingError, InputError
from rag.ingest.parse import ParserSpec
from rag.stores.backends.postgres import PostgresStore, is_postgres_url, redact


def migrate(config: Any, target: str) -> dict[str, Any]:
    """Copy every index of the local store of ``config`` into ``target``; returns what was copied."""
    from rag.stores.backends.local import IndexStore

    if not is_postgres_url(target):
        raise InputError(f"--to {target!r}: give a postgresql:// URL.")
    started = time.perf_counter()
    source = IndexStore(config.replace(store="local"))
    manifest = source.manifest()
    if manifest is None:
        raise IndexMissingError(f"No local index in {source.root.resolve()} to migrate: run `rag ingest PATH` first.")
    dest = PostgresStore(config.replace(store=target, embed_model=manifest["embed_model"]))
    copied = {}
    with dest.writer(config.lock_timeout) as connection:
        if dest.manifest() is not None:
            raise InputError(f"{redact(target)} already holds an index: migrate into an empty database.")
        indexes = [(_spec(entry), entry) for entry in manifest["indexes"].values()]
        with connection.transaction():  # all or nothing
            for name, info in manifest["files"].items():
                connection.execute("INSERT INTO rag_files (name, sha256, pages, document) VALUES (%s, %s, %s, %s::jsonb)",
                                   (name, info["sha256"], info["pages"], _document(source, name, info["sha256"])))
            for spec, entry in indexes:
                names, per_file = _nodes_by_file(source, spec, list(manifest["files"]))
                dest._create_index(connection, spec, names, per_file, default=entry.get("default", True))
                copied[spec.key] = {"kind": spec.kind, "nodes": sum(len(p) for p in per_file),
                                    "vectors": sum(v is not None for p in per_file for _, v in p)}
            dest._put_meta(connection, manifest.get("source"))
        dest._refresh_lexical(connection)
    return {"from": str(source.root.resolve()), "to": redact(target), "files": len(manifest["files"]),
            "indexes": copied, "seconds": round(time.perf_counter() - started, 2)}


def _spec(entry: dict[str, Any]) -> ParserSpec:
    return ParserSpec.of(entry["kind"], {k: v for k, v in entry["params"].items() if k != "kind"})


def _document(source: Any, name: str, sha: str) -> str | None:
    """The cached extracted text (JSON) of one file version; None when the cache lacks it (an index
    for new parser parameters then asks for a re-ingest)."""
    try:
        return source._document_cache(name, sha).read_text()  # the local store's own cache layout
    except (AttributeError, OSError):
        return None


class _Named:
    def __init__(self, name: str):
        self.name = name


def _nodes_by_file(source: Any, spec: ParserSpec, files: list[str]):
    """(files, per file its nodes in index order paired with their FAISS vector or None)."""
    _, storage = source.load(spec)
    faiss_index = storage.vector_store.client
    matrix = faiss_index.reconstruct_n(0, faiss_index.ntotal)
    index_struct = storage.index_store.index_structs()[0]
    vector_of = {node_id: matrix[int(position)] for position, node_id in index_struct.nodes_dict.items()}
    grouped: dict[str, list] = {name: [] for name in files}
    for node in storage.docstore.docs.values():
        name = node.metadata.get("file_name")
        if name not in grouped:
            raise IndexMissingError(f"The local index {spec.key} holds a node of {name!r}, which its manifest "
                                    "does not list: re-run `rag ingest PATH` before migrating.")
        grouped[name].append((node, vector_of.get(node.node_id)))
    if sum(v is not None for pairs in grouped.values() for _, v in pairs) != faiss_index.ntotal:
        raise IndexMissingError(f"The local index {spec.key} has vectors without nodes: re-run `rag ingest PATH`.")
    return [_Named(n) for n in files], [grouped[n] for n in files]

