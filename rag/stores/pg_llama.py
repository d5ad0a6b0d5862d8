"""LlamaIndex views of one PostgreSQL index table: a vector store (pgvector, direct SQL) and a
read-only docstore, so the retriever kinds run on it unchanged.

Each query is one SQL statement, so it sees every file either before or after that file's ingest
transaction, never half of it. Nodes come back with their text (``stores_text``): no docstore round
trip for the first stage; window neighbours and auto-merging parents are looked up by id, through
a cache (a node id names one version of a node, so cached entries never go stale), and still found
for a while after an ingest replaced them (``rag_retired``). ``borrow()`` lends an open autocommit
connection (a context manager).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from llama_index.core.storage.docstore.utils import json_to_doc
from llama_index.core.storage.kvstore.types import DEFAULT_COLLECTION, BaseKVStore
from llama_index.core.vector_stores.types import BasePydanticVectorStore, VectorStoreQuery, VectorStoreQueryResult
from pydantic import PrivateAttr

# Below this many vectors a query scans them all (exact, equal to FAISS flat); above, it uses the
# HNSW index (approximate, recall measured in bench/store_scale.py).
EXACT_BELOW = 20_000
HNSW_EF_SEARCH = 100
CACHE_SIZE = 50_000  # nodes kept in memory by id (all tables together)
# Hybrid retrieval runs a dense query, then a BM25 search, as two statements: an ingest may swap
# a file between them. Each dense query pins, for its thread, the file versions of its hits; a BM25
# search that soon after drops hits from another version of those files, so one result never
# mixes two versions of a file.
PIN_S = 2.0
_PINS = threading.local()


def _file_version(node: Any) -> tuple[str, str]:
    """(file, version) of a node: its source document's id is ``<file>@<sha256 prefix>``."""
    file, _, version = (node.ref_doc_id or "").rpartition("@")
    return file, version


class NodeCache:
    """Node JSON by (table, node id). A node id names one version of one node (ids are new for
    every file version), so an entry never goes stale; only the least recently used are dropped."""

    def __init__(self, size: int = CACHE_SIZE):
        from collections import OrderedDict

        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, table: str, node_id: str) -> Optional[dict]:
        with self._lock:
            node = self._items.get((table, node_id))
            if node is not None:
                self._items.move_to_end((table, node_id))
            return node

    def put(self, table: str, rows: Any) -> None:
        with self._lock:
            for node_id, node in rows:
                self._items[(table, node_id)] = node
                self._items.move_to_end((table, node_id))
            while len(self._items) > self.size:
                self._items.popitem(last=False)


NODES = NodeCache()


class PgVectorStore(BasePydanticVectorStore):
    """Inner-product search over ``table`` (scores equal to the local FAISS IndexFlatIP's)."""

    stores_text: bool = True
    is_embedding_query: bool = True
    table: str
    _borrow: Callable[[], Any] = PrivateAttr()
    _exact: bool = PrivateAttr()

    def __init__(self, table: str, borrow: Callable[[], Any], vectors: int):
        super().__init__(table=table)
        self._borrow = borrow
        self._exact = vectors < EXACT_BELOW

    @property
    def client(self) -> Any:
        return self._borrow

    def add(self, nodes: List[Any], **kwargs: Any) -> List[str]:
        raise NotImplementedError("the PostgreSQL store is written by `rag ingest` only")

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        raise NotImplementedError("the PostgreSQL store is written by `rag ingest` only")

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        import numpy as np

        vector = np.asarray(query.query_embedding, dtype="float32")
        with self._borrow() as connection:
            with connection.transaction():
                if self._exact:
                    connection.execute("SET LOCAL enable_indexscan = off")
                else:
                    connection.execute(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, query.similarity_top_k)}")
                rows = connection.execute(
                    f"SELECT node, -(embedding <#> %s) FROM {self.table} WHERE embedding IS NOT NULL "
                    "ORDER BY embedding <#> %s LIMIT %s",
                    (vector, vector, query.similarity_top_k)).fetchall()
        nodes = [json_to_doc(node) for node, _ in rows]
        setattr(_PINS, self.table, (time.monotonic(), dict(_file_version(n) for n in nodes)))
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(s) for _, s in rows],
                                      ids=[n.node_id for n in nodes])


class PgNodeKV(BaseKVStore):
    """Read-only key-value view of the nodes table, for ``KVDocumentStore`` (``get`` by node id)."""

    def __init__(self, table: str, borrow: Callable[[], Any]):
        self.table = table
        self._borrow = borrow

    def get(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        if not collection.endswith("/data"):
            return None  # ref-doc info and metadata collections: not kept
        node = NODES.get(self.table, key)
        if node is not None:
            return node
        with self._borrow() as connection:  # a node replaced by an ingest since the query began: retired
            row = connection.execute(f"SELECT node FROM {self.table} WHERE node_id = %s UNION ALL "
                                     "SELECT node FROM rag_retired WHERE tab = %s AND node_id = %s LIMIT 1",
                                     (key, self.table, key)).fetchone()
        if row is None:
            return None
        NODES.put(self.table, [(key, row[0])])
        return row[0]

    def get_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        if not collection.endswith("/data"):
            return {}
        with self._borrow() as connection:
            return dict(connection.execute(f"SELECT node_id, node FROM {self.table} ORDER BY file, position").fetchall())

    def put(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        raise NotImplementedError("the PostgreSQL store is written by `rag ingest` only")

    def delete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        raise NotImplementedError("the PostgreSQL store is written by `rag ingest` only")

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        return self.get(key, collection)

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        return self.get_all(collection)

    async def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        self.put(key, val, collection)

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return self.delete(key, collection)


class PgLexical:
    """BM25 over the embedded nodes of ``table``, always of the version the database holds now.

    Each search reads, in one snapshot, the version of the files and the BM25 index of that version
    (stored bytes, or built from the table while an ingest is between two files). A hit's node that
    an ingest replaces right after is still found by id (``rag_retired``). ``load_version(connection)`` -> (version, Bm25Index) is the store's.
    """

    def __init__(self, table: str, borrow: Callable[[], Any], version_of: Callable[[Any], str],
                 load_version: Callable[[Any, str], Any]):
        self.table = table
        self._borrow, self._version_of, self._load_version = borrow, version_of, load_version
        self._nodes = PgNodeKV(table, borrow)
        self._version: str | None = None
        self._bm25: Any = None
        self._lock = threading.Lock()

    def _current(self, connection: Any) -> Any:
        version = self._version_of(connection)
        with self._lock:
            if version != self._version:
                self._bm25, self._version = self._load_version(connection, version), version
            return self._bm25

    def search(self, query: str, top_k: int) -> list[tuple[str, float]]:
        with self._borrow() as connection, connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            hits = self._current(connection).search(query, top_k)
        pinned_at, versions = getattr(_PINS, self.table, (0.0, {}))
        setattr(_PINS, self.table, (0.0, {}))
        if time.monotonic() - pinned_at > PIN_S:
            return hits
        kept = []
        for node_id, score in hits:
            node = self._nodes.get(node_id, "docstore/data")
            file, version = _file_version(json_to_doc(node)) if node else ("", "")
            if versions.get(file, version) == version:
                kept.append((node_id, score))
        return kept


def index_over(table: str, borrow: Callable[[], Any], vectors: int, embed_model: Any):
    """(VectorStoreIndex, StorageContext) over one index table, like the local store's ``load``."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore

    vector_store = PgVectorStore(table, borrow, vectors)
    storage = StorageContext.from_defaults(vector_store=vector_store, docstore=KVDocumentStore(PgNodeKV(table, borrow)))
    index = VectorStoreIndex(nodes=[], storage_context=storage, embed_model=embed_model)
    return index, storage
