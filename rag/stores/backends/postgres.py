"""Stage 3 on a PostgreSQL server: ``store = "postgresql://user@host:port/db"`` (vectors in pgvector).

Tables, in the URL's database (created by the first ingest)::

    rag_meta        one row: embedding model and dimension, source folder, last update
    rag_files       one row per indexed PDF: name, SHA-256, pages, extracted text (for new indexes)
    rag_indexes     one row per index: parser spec, kind, parameters, default or on demand, its table
    rag_nodes_<id>  one table per index: every node (LlamaIndex JSON), the vector of embedded ones
    rag_lexical     the BM25 index of each index version (bytes)

One writer at a time: a session advisory lock; a second writer fails at once, saying who holds
it, or waits ``lock_timeout``. Each new or changed PDF is swapped into every index in one
transaction (its old rows deleted, new ones inserted, its ``rag_files`` row updated), so a crash
or Ctrl-C leaves each file at its old or its new version, and a query (one SQL statement) never
sees a mix. A new index (fresh store, new parser parameters or embedding model) is filled and
registered in one transaction. Credentials come from the URL or the ``PG*`` variables and are
never shown: messages print the URL with the password hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from rag.config import Config
from rag.errors import ConfigError, IndexMissingError, RagError
from rag.retrieval.nodes import ParsedNodes, ParserSpec, embedded_text
from rag.stores import StorePlugin, model_mismatch
from rag.stores.base import FileVersion, StoredNodes
from rag.stores.lock import StoreBusyError
from rag.types import IngestReport, PdfText

FORMAT = 2  # 2: stored texts of rag.types.TEXT_FORMAT 2; a store below it reads its PDFs again
LOCK_KEY = 0x72616770  # the advisory lock of a store ("ragp"; one store per database)
RETIRED_KEEP_S = 600  # replaced nodes stay readable by id this long, for queries that started before
URL_SCHEMES = ("postgresql://", "postgres://")

SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    format int NOT NULL, embed_model text NOT NULL, embed_dim int NOT NULL, source text, updated timestamptz);
CREATE TABLE IF NOT EXISTS rag_files (
    name text PRIMARY KEY, sha256 text NOT NULL, pages int NOT NULL, document jsonb);
CREATE TABLE IF NOT EXISTS rag_indexes (
    key text PRIMARY KEY, kind text NOT NULL, params jsonb NOT NULL, is_default boolean NOT NULL,
    tab text NOT NULL, dim int NOT NULL);
CREATE TABLE IF NOT EXISTS rag_lexical (tab text, version text, data bytea NOT NULL, PRIMARY KEY (tab, version));
CREATE TABLE IF NOT EXISTS rag_retired (
    tab text, node_id text, node jsonb NOT NULL, retired timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tab, node_id));
"""


class StoreUnavailableError(RagError):
    """The PostgreSQL server cannot be reached or refuses us."""


def is_postgres_url(value: str) -> bool:
    return str(value).startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()


def _quiet(message: Any, url: str) -> str:
    """The first line of a driver message, without the password should the driver echo it."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else type(message).__name__
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


class Connections:
    """Connections to one server: one kept open per thread for queries, fresh ones for writers."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def open(self, purpose: str = "query"):
        import psycopg

        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                         application_name=f"rag-pdf {purpose} pid {os.getpid()}")
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"PostgreSQL store {redact(self.url)}: cannot connect ({_quiet(exc, self.url)}). Start the "
                "server, or fix the store setting (RAG_STORE) or the PG* variables."
            ) from None
        return connection

    def register_vector(self, connection) -> bool:
        """numpy arrays in and out of ``vector`` columns, once the extension exists (False before)."""
        from pgvector.psycopg import register_vector

        if not connection.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'").fetchone():
            return False
        register_vector(connection)
        return True

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Any]:
        """This thread's query connection (reopened after a failure)."""
        import psycopg

        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self._local.connection = self.open()
            self._local.vector = self.register_vector(connection)
        elif not self._local.vector:  # opened before the first ingest created the extension
            self._local.vector = self.register_vector(connection)
        try:
            yield connection
        except psycopg.OperationalError as exc:
            connection.close()
            raise StoreUnavailableError(f"PostgreSQL store {redact(self.url)}: {_quiet(exc, self.url)}") from None

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()


class PostgresStore:
    """The indexes of one PostgreSQL database (a ``rag.stores.base.Store``)."""

    def __init__(self, config: Config):
        if not is_postgres_url(config.store):
            raise ConfigError(f"store {config.store!r}: give 'local' or a postgresql:// URL.")
        self.config = config
        self.url = config.store
        self.pg = Connections(self.url)

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)})"

    def where(self) -> str:
        return redact(self.url)

    # ------------------------------------------------------------ manifest
    def manifest(self) -> dict[str, Any] | None:
        """What is current, in the local store's shape (``table`` in place of ``dir``); None if empty."""
        with self.pg.borrow() as connection, connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if connection.execute("SELECT to_regclass('rag_meta')").fetchone()[0] is None:
                return None
            meta = connection.execute("SELECT embed_model, embed_dim, source, updated, format FROM rag_meta").fetchone()
            if meta is None:
                return None
            files = {name: {"sha256": sha, "pages": pages} for name, sha, pages in connection.execute(
                'SELECT name, sha256, pages FROM rag_files ORDER BY name COLLATE "C"')}
            indexes = {}
            for key, kind, params, default, tab, dim in connection.execute(
                    "SELECT key, kind, params, is_default, tab, dim FROM rag_indexes ORDER BY key").fetchall():
                nodes, vectors = connection.execute(f"SELECT count(*), count(embedding) FROM {tab}").fetchone()
                indexes[key] = {"kind": kind, "params": params, "table": tab, "dim": dim, "nodes": nodes,
                                "vectors": vectors, "default": default}
        return {"format": meta[4], "embed_model": meta[0], "embed_dim": meta[1], "source": meta[2], "files": files,
                "indexes": indexes, "updated": meta[3].isoformat(timespec="seconds") if meta[3] else None}

    def require_manifest(self) -> dict[str, Any]:
        manifest = self.manifest()
        if manifest is None:
            raise IndexMissingError(f"No index in {redact(self.url)}: run `rag ingest PATH` first.")
        if manifest["embed_model"] != self.config.embed_model:
            raise model_mismatch(redact(self.url), manifest["embed_model"], self.config.embed_model)
        return manifest

    def index_entry(self, spec: ParserSpec) -> dict[str, Any] | None:
        return self.require_manifest()["indexes"].get(spec.key)

    def stored_text(self, name: str, sha256: str) -> PdfText | None:
        with self.pg.borrow() as connection:
            row = connection.execute("SELECT document FROM rag_files WHERE name = %s AND sha256 = %s",
                                     (name, sha256)).fetchone() if self._has_tables(connection) else None
        return PdfText.from_json(row[0]) if row and row[0] is not None else None

    def stored_nodes(self, spec: ParserSpec, document: FileVersion) -> StoredNodes | None:
        import numpy as np
        from llama_index.core.storage.docstore.utils import json_to_doc

        manifest = self.require_manifest()
        entry = manifest["indexes"].get(spec.key)
        if entry is None or manifest["files"].get(document.name, {}).get("sha256") != document.sha256:
            return None
        with self.pg.borrow() as connection:
            rows = connection.execute(f"SELECT node, embedding FROM {entry['table']} WHERE file = %s ORDER BY position",
                                      (document.name,)).fetchall()
        vectors = [_array(v) for _, v in rows if v is not None]
        matrix = np.stack(vectors) if vectors else np.zeros((0, entry["dim"]), dtype="float32")
        return StoredNodes(ParsedNodes([json_to_doc(n) for n, _ in rows], [v is not None for _, v in rows]), matrix)

    def reset(self, everything: bool = False, confirm: Callable[[str], bool] | None = None) -> str:
        raise ConfigError(f"rag reset knows the files of the local store only, not store {redact(self.url)!r}.")

    def _has_tables(self, connection) -> bool:
        return connection.execute("SELECT to_regclass('rag_files')").fetchone()[0] is not None

    def _table(self, spec: ParserSpec) -> str:
        return f"rag_nodes_{_digest(spec.key, self.config.embed_model)[:16]}"

    # ------------------------------------------------------------ the writer lock
    @contextlib.contextmanager
    def writer(self, wait_s: float) -> Iterator["PgWriter"]:
        """The store's advisory lock, held by the writer's connection."""
        with self._locked(wait_s) as connection:
            yield PgWriter(self, connection)

    @contextlib.contextmanager
    def _locked(self, wait_s: float) -> Iterator[Any]:
        """A connection holding the store's advisory lock (released when it closes, however we end)."""
        connection = self.pg.open("ingest")
        try:
            deadline = time.monotonic() + wait_s
            while not connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
                if time.monotonic() >= deadline:
                    holder = connection.execute(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted", (LOCK_KEY,)).fetchone()
                    raise StoreBusyError(
                        f"{redact(self.url)}: another writer ({holder[0] if holder else 'another process'}) holds "
                        "this store. Wait for it to finish, or set RAG_LOCK_TIMEOUT=SECONDS to wait for it."
                    )
                time.sleep(0.2)
            try:
                connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except Exception as exc:  # psycopg.Error: not installed, or no right to create it
                raise StoreUnavailableError(
                    f"{redact(self.url)}: pgvector is not available ({_quiet(exc, self.url)}). Install it on the "
                    "server (Debian: apt install postgresql-15-pgvector) and run CREATE EXTENSION vector as a superuser."
                ) from None
            self.pg.register_vector(connection)
            connection.execute(SCHEMA)
            yield connection
        finally:
            connection.close()

    # ------------------------------------------------------------ writes (inside a transaction)
    def _put_file(self, connection, document: FileVersion) -> None:
        text = json.dumps(document.text.to_json()) if document.text is not None else None
        connection.execute(
            "INSERT INTO rag_files (name, sha256, pages, document) VALUES (%s, %s, %s, %s::jsonb) "
            "ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, pages = EXCLUDED.pages, "
            "document = EXCLUDED.document", (document.name, document.sha256, document.pages, text))

    def _put_meta(self, connection, source: str | None) -> None:
        dims = [d for (d,) in connection.execute("SELECT DISTINCT dim FROM rag_indexes").fetchall()]
        connection.execute(
            "INSERT INTO rag_meta (singleton, format, embed_model, embed_dim, source, updated) "
            "VALUES (true, %s, %s, %s, %s, now()) ON CONFLICT (singleton) DO UPDATE SET format = EXCLUDED.format, "
            "embed_model = EXCLUDED.embed_model, embed_dim = EXCLUDED.embed_dim, source = EXCLUDED.source, "
            "updated = EXCLUDED.updated", (FORMAT, self.config.embed_model, dims[0] if dims else 0, source))

    def _copy_rows(self, connection, tab: str, name: str, pairs) -> None:
        from llama_index.core.storage.docstore.utils import doc_to_json

        with connection.cursor().copy(f"COPY {tab} (node_id, file, position, node, embedding) FROM STDIN") as copy:
            for position, (node, vector) in enumerate(pairs):
                node.embedding = None  # the vector lives in its own column
                copy.write_row((node.node_id, name, position, json.dumps(doc_to_json(node)), vector))

    def _create_index(self, connection, spec: ParserSpec, documents: list[FileVersion], per_document,
                      default: bool) -> None:
        dim = next((len(v) for pairs in per_document for _, v in pairs if v is not None), 0)
        tab = self._table(spec)
        connection.execute(f"DROP TABLE IF EXISTS {tab}")
        connection.execute(f"CREATE TABLE {tab} (node_id text PRIMARY KEY, file text NOT NULL, position int NOT NULL, "
                           f"node jsonb NOT NULL, embedding vector({dim}))")
        for pdf, pairs in zip(documents, per_document):
            self._copy_rows(connection, tab, pdf.name, pairs)
        connection.execute(f"CREATE INDEX ON {tab} (file)")
        connection.execute(f"CREATE INDEX ON {tab} USING hnsw (embedding vector_ip_ops)")
        connection.execute(
            "INSERT INTO rag_indexes (key, kind, params, is_default, tab, dim) VALUES (%s, %s, %s::jsonb, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, params = EXCLUDED.params, "
            "is_default = EXCLUDED.is_default, tab = EXCLUDED.tab, dim = EXCLUDED.dim",
            (spec.key, spec.kind, json.dumps(spec.as_dict()), default, tab, dim))

    # ------------------------------------------------------------ lexical (BM25) per index version
    def _version(self, connection) -> str:
        """Which version of the files the database holds: changes with every file's transaction."""
        return connection.execute(
            "SELECT md5(coalesce(string_agg(name || '/' || sha256, ',' ORDER BY name COLLATE \"C\"), ''))"
            " FROM rag_files").fetchone()[0][:16]

    def _refresh_lexical(self, connection) -> None:
        """Store the BM25 index of every index for the current files; drop older versions."""
        from rag.retrieval.bm25 import Bm25Index

        version = self._version(connection)
        for (tab,) in connection.execute("SELECT tab FROM rag_indexes").fetchall():
            if connection.execute("SELECT 1 FROM rag_lexical WHERE tab = %s AND version = %s", (tab, version)).fetchone():
                continue
            data = Bm25Index.build(*_lexical_corpus(connection, tab)).to_bytes()
            with connection.transaction():
                connection.execute("DELETE FROM rag_lexical WHERE tab = %s", (tab,))
                connection.execute("INSERT INTO rag_lexical (tab, version, data) VALUES (%s, %s, %s)", (tab, version, data))

    def lexical(self, spec: ParserSpec):
        """BM25 over the embedded nodes of ``spec``'s index (``.search(query, top_k)``), following ingests."""
        from rag.stores.pg_llama import PgLexical

        tab = self._built(spec)["table"]
        return PgLexical(tab, self.pg.borrow, self._version, lambda connection, version: _bm25_of(connection, tab, version))

    def node_vectors(self, spec: ParserSpec) -> "PgNodeVectors":
        """The stored (normalised) vectors of the embedded nodes of ``spec``'s index, by node id."""
        return PgNodeVectors(self.pg, self._built(spec)["table"])

    def _built(self, spec: ParserSpec) -> dict[str, Any]:
        entry = self.index_entry(spec)
        if entry is None:
            raise IndexMissingError(f"No {spec.kind} index for {spec.key} in {redact(self.url)}: "
                                    "run `rag ingest PATH` first.")
        return entry

    # ------------------------------------------------------------ reading
    def load(self, spec: ParserSpec, progress: bool = False):
        """(VectorStoreIndex, StorageContext) over ``spec``'s index table."""
        from rag.embedding import embedding_model
        from rag.stores.pg_llama import index_over

        entry = self._built(spec)
        return index_over(entry["table"], self.pg.borrow, entry["vectors"], embedding_model(self.config))


class PgWriter:
    """Writes of one ingest on the connection that holds the store's lock. Each new or changed file
    is swapped into the kept indexes in its own transaction; new indexes, dropped ones and the meta
    row change in one last transaction."""

    def __init__(self, store: PostgresStore, connection):
        self.store, self.connection = store, connection
        self.old: dict[str, Any] | None = None
        self.nodes: dict[tuple[str, str], list] = {}  # (spec key, file) -> [(node, vector or None)]

    def previous(self, report: IngestReport) -> dict[str, Any] | None:
        self.connection.execute("DELETE FROM rag_retired WHERE retired < now() - %s * interval '1 second'",
                                (RETIRED_KEEP_S,))
        self.old = self.store.manifest()
        return self.old

    def texts_current(self, manifest: dict[str, Any]) -> bool:
        return manifest["format"] >= FORMAT

    def keep_text(self, pdf: PdfText) -> None:
        pass  # a text goes into rag_files with its file's transaction

    def needs_nodes(self, spec: ParserSpec, documents: list[FileVersion], renewed: set[str]) -> list[FileVersion]:
        if spec.key in self._kept_keys():
            return [d for d in documents if d.name in renewed]
        return sorted(documents, key=lambda d: d.name)  # a new index holds every file

    def keep_nodes(self, spec: ParserSpec, document: FileVersion, nodes: StoredNodes) -> None:
        import numpy as np

        vectors = iter(nodes.vectors)
        self.nodes[(spec.key, document.name)] = [(n, np.asarray(next(vectors), dtype="float32") if e else None)
                                                 for n, e in zip(nodes.parsed.nodes, nodes.parsed.embed)]

    def commit(self, documents: list[FileVersion], renewed: set[str], specs: list[ParserSpec],
               defaults: dict[str, bool], source: str | None, report: IngestReport) -> bool:
        connection, store, old = self.connection, self.store, self.old
        kept_keys = self._kept_keys()
        kept = [s for s in specs if s.key in kept_keys]
        new = [s for s in specs if s.key not in kept_keys]
        dropped = [e["table"] for k, e in (old or {}).get("indexes", {}).items() if k not in {s.key for s in kept}]
        read = [d for d in documents if d.name in renewed]
        if not (read or report.removed or new or dropped):
            store._refresh_lexical(connection)  # in case a crash came between the last commit and this
            return False
        if kept:  # one transaction per file version
            for document in read:
                with connection.transaction():
                    store._put_file(connection, document)
                    for spec in kept:
                        tab = old["indexes"][spec.key]["table"]
                        _retire(connection, tab, document.name)
                        store._copy_rows(connection, tab, document.name, self.nodes[(spec.key, document.name)])
            for name in report.removed:
                with connection.transaction():
                    connection.execute("DELETE FROM rag_files WHERE name = %s", (name,))
                    for spec in kept:
                        _retire(connection, old["indexes"][spec.key]["table"], name)
        every = sorted(documents, key=lambda d: d.name)
        with connection.transaction():  # new indexes, retired ones, and (without kept indexes) the files
            if not kept:
                for document in read:
                    store._put_file(connection, document)
                if report.removed:
                    connection.execute("DELETE FROM rag_files WHERE name = ANY(%s)", (report.removed,))
            for tab in dropped:
                connection.execute(f"DROP TABLE IF EXISTS {tab}")
                connection.execute("DELETE FROM rag_lexical WHERE tab = %s", (tab,))
            connection.execute("DELETE FROM rag_indexes WHERE tab = ANY(%s)", (dropped,))
            for spec in new:
                store._create_index(connection, spec, every, [self.nodes[(spec.key, d.name)] for d in every],
                                    default=defaults[spec.key])
            store._put_meta(connection, source)
        store._refresh_lexical(connection)
        return True

    def add_index(self, spec: ParserSpec, documents: list[FileVersion]) -> None:
        every = sorted(documents, key=lambda d: d.name)
        with self.connection.transaction():
            self.store._create_index(self.connection, spec, every, [self.nodes[(spec.key, d.name)] for d in every],
                                     default=False)
        self.store._refresh_lexical(self.connection)

    def _kept_keys(self) -> set[str]:
        """The indexes updated file by file (the others are built anew): none after a model change."""
        if self.old is None or self.old["embed_model"] != self.store.config.embed_model:
            return set()
        return set(self.old["indexes"])


class PgNodeVectors:
    def __init__(self, pg: Connections, tab: str):
        self.pg, self.tab = pg, tab

    def get(self, node_ids: list[str]):
        import numpy as np

        with self.pg.borrow() as connection:
            found = dict(connection.execute(f"SELECT node_id, embedding FROM {self.tab} WHERE node_id = ANY(%s) "
                                            "AND embedding IS NOT NULL", (list(node_ids),)).fetchall())
        missing = [i for i in node_ids if i not in found]
        if missing:
            raise KeyError(f"no vector for node {missing[0]!r} in {self.tab}")
        if not node_ids:
            return np.zeros((0, 0), dtype="float32")
        return np.stack([_array(found[i]) for i in node_ids])


def _array(vector: Any):
    """A pgvector value (``Vector`` in binary results, an array in text ones) as float32."""
    import numpy as np

    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype="float32")


def _retire(connection, tab: str, name: str) -> None:
    """Delete the rows of one file, keeping their nodes readable by id for a while: a query that read
    a node of the old version may still ask for its parent or neighbours (auto-merging, rerank)."""
    connection.execute(f"INSERT INTO rag_retired (tab, node_id, node) SELECT %s, node_id, node FROM {tab} "
                       "WHERE file = %s ON CONFLICT (tab, node_id) DO NOTHING", (tab, name))
    connection.execute(f"DELETE FROM {tab} WHERE file = %s", (name,))


def _bm25_of(connection, tab: str, version: str):
    """The stored BM25 index of ``tab`` at ``version``, or one built from the table (an ingest is
    between two files, or crashed before storing it)."""
    from rag.retrieval.bm25 import Bm25Index

    row = connection.execute("SELECT data FROM rag_lexical WHERE tab = %s AND version = %s", (tab, version)).fetchone()
    if row is not None:
        return Bm25Index.from_bytes(bytes(row[0]))
    return Bm25Index.build(*_lexical_corpus(connection, tab))


def _lexical_corpus(connection, tab: str) -> tuple[list[str], list[str]]:
    """Ids and texts of the embedded nodes, in the order they were indexed."""
    from llama_index.core.storage.docstore.utils import json_to_doc

    rows = connection.execute(f'SELECT node_id, node FROM {tab} WHERE embedding IS NOT NULL '
                              'ORDER BY file COLLATE "C", position').fetchall()
    return [i for i, _ in rows], [embedded_text(json_to_doc(n)) for _, n in rows]


PLUGIN = StorePlugin(name="postgresql", help="PostgreSQL + pgvector: store = postgresql://user@host:port/db",
               open=PostgresStore, order=1)
