"""The PostgreSQL + pgvector store, for real: a throw-away server on 127.0.0.1 (password auth),
the bundled embedder, the sample PDFs. ``pytest -k pgvector`` selects these tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_GENERATOR
from pdfs import make_pdf
from pg_server import running_server

from rag import RAG, Config
from rag.errors import IndexMissingError

PASSWORD = "pgvector-Secr3t-pw"
KINDS = ("basic", "sentence_window", "auto_merging")
MODES = ("dense", "bm25", "hybrid")
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def pg():
    yield from running_server(vector=True, password=PASSWORD)


_databases = iter(range(1_000_000))


@pytest.fixture
def url(pg):
    """A fresh empty database on the server, as a store URL with the password in it."""
    return pg.create_database(f"store{next(_databases)}")


def _sources(app: RAG, question: str, spec: str) -> list[tuple]:
    return [(s.file, s.page, s.page_end, s.text, round(s.score, 4)) for s in app.retrieve(question, spec)]


def _db(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _table(app: RAG, kind: str) -> str:
    return next(e["table"] for e in app.store.manifest()["indexes"].values() if e["kind"] == kind and e["default"])


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**ENV, **(env or {})}, cwd=ROOT)


@pytest.fixture(scope="module")
def pg_sample(pg, sample_pdfs, tmp_path_factory):
    """The sample PDFs ingested into PostgreSQL, with the same models as the local ``sample_app``."""
    url = pg.create_database("sample")
    app = RAG(Config(store=url, storage_dir=tmp_path_factory.mktemp("pg_storage"), llm_model=TEST_GENERATOR),
              progress=False)
    report = app.ingest(sample_pdfs, progress=False)
    assert not report.failed and report.embedded > 0
    return app


# ---------------------------------------------------------------- same results as the local store

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_pgvector_retrieves_what_the_local_store_retrieves(sample_app, pg_sample, sample_questions, kind, mode):
    spec = f"{kind}:mode={mode}"
    compared = 0
    for item in sample_questions:
        local = _sources(sample_app, item["question"], spec)
        assert local, (spec, item["question"])
        assert _sources(pg_sample, item["question"], spec) == local, (spec, item["question"])
        compared += 1
    assert compared == len(sample_questions) >= 10


def test_pgvector_manifest_matches_the_local_one(sample_app, pg_sample):
    local, pg_manifest = sample_app.store.manifest(), pg_sample.store.manifest()
    assert pg_manifest["files"] == local["files"]
    assert pg_manifest["embed_model"] == local["embed_model"] and pg_manifest["embed_dim"] == local["embed_dim"] == 384
    # The default indexes (other tests add on-demand ones to the shared local sample store).
    shape = lambda m: {k: (e["kind"], e["nodes"], e["vectors"]) for k, e in m["indexes"].items() if e["default"]}  # noqa: E731
    assert shape(pg_manifest) == shape(local)


def test_pgvector_node_vectors_are_the_stored_normalised_embeddings(pg_sample):
    import numpy as np

    spec = pg_sample.spec("basic").parser_spec
    hits = pg_sample.store.lexical(spec).search("sick leave days", 3)
    assert len(hits) == 3
    vectors = pg_sample.store.node_vectors(spec).get([i for i, _ in hits])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    with pytest.raises(KeyError):
        pg_sample.store.node_vectors(spec).get(["no-such-node"])


def test_pgvector_on_demand_index_for_new_parameters(pg_sample):
    """Node-shaping parameters the store has no index for: built from the stored texts on first use."""
    before = set(pg_sample.store.manifest()["indexes"])
    sources = pg_sample.retrieve("How many days of sick leave are paid?", "sentence_window:window_size=1")
    assert sources and all(s.file.endswith(".pdf") for s in sources)
    added = set(pg_sample.store.manifest()["indexes"]) - before
    assert len(added) == 1 and not pg_sample.store.manifest()["indexes"][added.pop()]["default"]


# ---------------------------------------------------------------- ingestion keeps its promises

def _corpus(folder: Path) -> Path:
    make_pdf(folder / "alpha.pdf", ["Alpha report. The alpha reactor runs at 310 kelvin.",
                                    "Alpha maintenance happens every Tuesday."])
    make_pdf(folder / "beta.pdf", ["Beta manual. The beta pump moves 40 litres per minute."])
    return folder


def test_pgvector_incremental_reingest(url, pg, tmp_path):
    folder = _corpus(tmp_path / "pdfs")
    app = RAG(Config(store=url, storage_dir=tmp_path / "s"), progress=False)
    early = RAG(app.config, progress=False)  # a reader before the first ingest
    with pytest.raises(IndexMissingError, match="run `rag ingest PATH` first"):
        early.retrieve("alpha reactor", "basic")
    first = app.ingest(folder, progress=False)
    assert sorted(first.added) == ["alpha.pdf", "beta.pdf"] and first.embedded > 0
    assert early.retrieve("alpha reactor", "basic:mode=dense")  # the same connection, now with vectors

    again = app.ingest(folder, progress=False)
    assert again.embedded == 0 and sorted(again.unchanged) == ["alpha.pdf", "beta.pdf"]
    assert any(m.startswith("Nothing changed") for m in again.messages)

    beta_rows = pg.query(_db(url), f"SELECT node_id FROM {_table(app, 'basic')} WHERE file = 'beta.pdf'")
    alpha_before = pg.query(_db(url), f"SELECT node_id FROM {_table(app, 'basic')} WHERE file = 'alpha.pdf'")
    reader = RAG(app.config, progress=False)  # stays open across the next ingest, like a chat or a server
    question = "At what temperature does the alpha reactor run?"
    assert all("310 kelvin" in _sources(reader, question, f"basic:mode={m}")[0][3] for m in MODES)
    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])
    make_pdf(folder / "gamma.pdf", ["Gamma notes. Gamma rays are filtered by lead shielding."])
    changed = app.ingest(folder, progress=False)
    assert changed.changed == ["alpha.pdf"] and changed.added == ["gamma.pdf"] and changed.unchanged == ["beta.pdf"]
    # Only the changed and added files were embedded: beta's rows are the very same rows.
    assert pg.query(_db(url), f"SELECT node_id FROM {_table(app, 'basic')} WHERE file = 'beta.pdf'") == beta_rows
    texts = " ".join(t for (t,) in pg.query(_db(url), f"SELECT node->'__data__'->>'text' FROM {_table(app, 'basic')}"))
    assert "295 kelvin" in texts and "310 kelvin" not in texts and "lead shielding" in texts
    assert all("295 kelvin" in _sources(reader, question, f"basic:mode={m}")[0][3] for m in MODES)
    # A query that read the old version before the swap can still look its nodes up by id (auto-merging
    # asks for parents, the reranker for neighbours), and gets the old version, whole.
    _, storage = reader.index(reader.spec("basic"))
    assert "310 kelvin" in storage.docstore.get_node(alpha_before[0][0]).get_content()

    (folder / "gamma.pdf").unlink()
    removed = app.ingest(folder, progress=False)
    assert removed.removed == ["gamma.pdf"] and removed.embedded == 0
    assert set(app.store.manifest()["files"]) == {"alpha.pdf", "beta.pdf"}
    for kind in KINDS:
        files = {f for (f,) in pg.query(_db(url), f"SELECT DISTINCT file FROM {_table(app, kind)}")}
        assert files == {"alpha.pdf", "beta.pdf"}, kind


def test_pgvector_interrupted_ingest_leaves_the_previous_version(url, pg, tmp_path, monkeypatch):
    from rag.stores.backends.postgres import PostgresStore

    folder = _corpus(tmp_path / "pdfs")
    app = RAG(Config(store=url, storage_dir=tmp_path / "s"), progress=False)
    app.ingest(folder, progress=False)
    before = app.store.manifest()
    answer = _sources(app, "At what temperature does the alpha reactor run?", "basic:mode=dense")

    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])
    real_copy = PostgresStore._copy_rows

    def copy_then_interrupt(self, connection, tab, name, pairs):
        real_copy(self, connection, tab, name, pairs)  # old rows deleted, new ones written, not committed
        raise KeyboardInterrupt

    monkeypatch.setattr(PostgresStore, "_copy_rows", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        app.ingest(folder, progress=False)
    monkeypatch.undo()

    assert app.store.manifest()["files"] == before["files"]
    assert _sources(RAG(app.config, progress=False), "At what temperature does the alpha reactor run?",
                    "basic:mode=dense") == answer
    assert "310 kelvin" in " ".join(s[3] for s in answer)
    assert app.ingest(folder, progress=False).changed == ["alpha.pdf"]  # the lock was released


def test_pgvector_hybrid_never_mixes_two_versions_of_a_file(url, tmp_path, monkeypatch):
    """An ingest that swaps a file between the dense query and the BM25 search of one hybrid retrieve."""
    import rag.stores.pg_llama as pg_llama

    monkeypatch.setattr(pg_llama, "PIN_S", 600.0)  # the ingest below takes longer than a real retrieve
    folder = _corpus(tmp_path / "pdfs")
    app = RAG(Config(store=url, storage_dir=tmp_path / "s"), progress=False)
    app.ingest(folder, progress=False)
    reader = RAG(app.config, progress=False)
    index, storage = reader.index(reader.spec("basic"))
    lexical = reader.store.lexical(reader.spec("basic").parser_spec)
    question = "alpha reactor kelvin, beta pump litres"
    dense = index.as_retriever(similarity_top_k=4).retrieve(question)  # pins alpha's first version
    assert "310 kelvin" in " ".join(n.node.get_content() for n in dense if n.node.metadata["file_name"] == "alpha.pdf")

    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])
    app.ingest(folder, progress=False)
    same_retrieve = [storage.docstore.get_node(i).metadata["file_name"] for i, _ in lexical.search(question, 4)]
    assert same_retrieve and "alpha.pdf" not in same_retrieve  # the new alpha would mix with the old
    next_retrieve = [storage.docstore.get_node(i).get_content() for i, _ in lexical.search(question, 4)]
    assert any("295 kelvin" in text for text in next_retrieve)


KILLED_WRITER = """
import sys, time
from pathlib import Path
from rag import RAG, Config
from rag.errors import IndexMissingError
from rag.stores.backends.postgres import PostgresStore

real_copy = PostgresStore._copy_rows
def copy_then_hang(self, connection, tab, name, pairs):
    real_copy(self, connection, tab, name, pairs)
    Path(sys.argv[3]).write_text("inside the transaction")
    time.sleep(600)
PostgresStore._copy_rows = copy_then_hang
RAG(Config(store=sys.argv[1], storage_dir=sys.argv[4]), progress=False).ingest(sys.argv[2], progress=False)
"""


def test_pgvector_readers_see_the_old_version_and_kill_9_loses_nothing(url, pg, tmp_path):
    """A writer stopped mid-transaction: readers see the complete old file; after kill -9 the old
    version stays, the lock is gone, and the next ingest commits the new version."""
    folder = _corpus(tmp_path / "pdfs")
    app = RAG(Config(store=url, storage_dir=tmp_path / "s"), progress=False)
    app.ingest(folder, progress=False)
    question = "At what temperature does the alpha reactor run?"
    answer = _sources(app, question, "basic:mode=hybrid")
    nodes_before = app.store.manifest()["indexes"]

    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])
    flag = tmp_path / "inside"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url, str(folder), str(flag), str(tmp_path / "s")],
                              env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert writer.poll() is None, writer.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the writer never reached its transaction"
            time.sleep(0.2)
        reader = RAG(app.config, progress=False)
        assert _sources(reader, question, "basic:mode=hybrid") == answer  # old, whole
        assert reader.store.manifest()["indexes"] == nodes_before
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert _sources(RAG(app.config, progress=False), question, "basic:mode=hybrid") == answer
    retry = RAG(app.config.replace(lock_timeout=30), progress=False).ingest(folder, progress=False)
    assert retry.changed == ["alpha.pdf"]
    assert "295 kelvin" in " ".join(s[3] for s in _sources(RAG(app.config, progress=False), question, "basic"))


def test_pgvector_second_writer_is_refused_with_a_message_then_waits(url, tmp_path):
    from rag.stores.backends.postgres import PostgresStore
    from rag.stores.lock import StoreBusyError

    folder = _corpus(tmp_path / "pdfs")
    config = Config(store=url, storage_dir=tmp_path / "s")
    holder = PostgresStore(config).writer(0)
    holder.__enter__()
    released = False
    try:
        with pytest.raises(StoreBusyError) as busy:
            RAG(config, progress=False).ingest(folder, progress=False)
        message = str(busy.value)
        assert f"another writer (rag-pdf ingest pid {os.getpid()})" in message and "RAG_LOCK_TIMEOUT" in message
        assert PASSWORD not in message and ":***@" in message

        cli = _cli("ingest", str(folder), "--quiet", env={"RAG_STORE": url, "RAG_STORAGE_DIR": str(tmp_path / "s")})
        assert cli.returncode == 2, cli.stderr
        assert "another writer" in cli.stderr and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
        assert PASSWORD not in cli.stderr + cli.stdout

        def release_soon():
            nonlocal released
            time.sleep(1.5)
            released = True
            holder.__exit__(None, None, None)

        threading.Thread(target=release_soon).start()
        started = time.monotonic()
        report = RAG(config.replace(lock_timeout=60), progress=False).ingest(folder, progress=False)
        assert released and time.monotonic() - started >= 1.0
        assert sorted(report.added) == ["alpha.pdf", "beta.pdf"]
    finally:
        if not released:
            holder.__exit__(None, None, None)


# ---------------------------------------------------------------- credentials and TruLens

def test_pgvector_credentials_never_leak(url, pg, tmp_path, sample_questions):
    folder = _corpus(tmp_path / "pdfs")
    env = {"RAG_STORE": url, "RAG_STORAGE_DIR": str(tmp_path / "s"), "RAG_LLM_MODEL": TEST_GENERATOR}
    outputs = []
    for args in (["ingest", str(folder)], ["ingest", str(folder), "--json"], ["sources"], ["sources", "--json"],
                 ["retrieve", "alpha reactor temperature", "--json"]):
        run = _cli(*args, env=env)
        assert run.returncode == 0, (args, run.stderr)
        outputs.append(run.stdout + run.stderr)
    wrong = _cli("sources", env={**env, "RAG_STORE": url.replace(PASSWORD, "not-" + PASSWORD)})
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "password authentication failed" in wrong.stderr and ":***@" in wrong.stderr
    outputs.append(wrong.stdout + wrong.stderr)

    app = RAG(Config(store=url, storage_dir=tmp_path / "s", llm_model=TEST_GENERATOR, max_new_tokens=16),
              progress=False)
    assert app.config.resolved_database_url.endswith(f"@127.0.0.1:{pg.port}/{_db(url)}")  # records beside the index
    results = app.evaluate([{"question": "At what temperature does the alpha reactor run?"}], retrievers=["basic"],
                           judge="lexical", progress=False, output_dir=tmp_path / "results", at=[1, 2])
    assert len(results.rows) == 1 and results.rows["error"].isna().all()
    assert {"hit_rate@1", "hit_rate@2"} <= set(results.rows.columns)  # evaluate's options reach the run
    assert PASSWORD not in results.database_url

    tables = [t for (t,) in pg.query(_db(url), "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert {"rag_files", "rag_indexes", "trulens_apps", "trulens_events"} <= set(tables), tables
    for table in tables:
        dump = " ".join(row for (row,) in pg.query(_db(url), f"SELECT t::text FROM {table} t"))
        assert PASSWORD not in dump, table
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()] + \
            [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    for text in outputs:
        assert PASSWORD not in text


# ---------------------------------------------------------------- rag store migrate

def test_pgvector_migrate_copies_the_local_store_without_embedding(sample_app, pg, sample_questions, monkeypatch):
    import rag.embedding
    import rag.ingest.sync as sync

    def no_embedding(*args, **kwargs):
        raise AssertionError("migrate embedded something")

    url = pg.create_database("migrated")
    with monkeypatch.context() as patched:
        patched.setattr(rag.embedding, "embed_texts", no_embedding)
        patched.setattr(sync, "embed_texts", no_embedding)
        done = sample_app.migrate(url)
    assert done["files"] == 3 and PASSWORD not in json.dumps(done)
    migrated = RAG(sample_app.config.replace(store=url), progress=False)
    local = sample_app.store.manifest()
    assert migrated.store.manifest()["files"] == local["files"]
    for kind in KINDS:
        for mode in MODES:
            for item in sample_questions[:4]:
                spec = f"{kind}:mode={mode}"
                assert _sources(migrated, item["question"], spec) == _sources(sample_app, item["question"], spec), spec


def test_pgvector_migrate_command(sample_app, pg):
    url = pg.create_database("migrated_cli")
    run = _cli("--storage-dir", str(sample_app.config.storage_dir), "store", "migrate", "--to", url)
    assert run.returncode == 0, run.stderr
    assert "nothing re-embedded" in run.stdout and PASSWORD not in run.stdout + run.stderr
    again = _cli("--storage-dir", str(sample_app.config.storage_dir), "store", "migrate", "--to", url)
    assert again.returncode == 2 and "already holds an index" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and PASSWORD not in again.stderr


# ---------------------------------------------------------------- the store setting

def test_pgvector_store_setting_routes_urls_and_hides_passwords():
    from rag.errors import ConfigError
    from rag.stores import open_store
    from rag.stores.backends.postgres import PostgresStore, redact

    store = open_store(Config(store=f"postgresql://rag:{PASSWORD}@db.example:5432/rag"))
    assert isinstance(store, PostgresStore) and PASSWORD not in repr(store)
    assert isinstance(open_store(Config(store="postgres://rag@db.example/rag")), PostgresStore)
    assert redact(f"postgresql://rag:{PASSWORD}@h:1/d") == "postgresql://rag:***@h:1/d"
    assert redact("postgresql://rag@h/d") == "postgresql://rag@h/d"
    with pytest.raises(ConfigError, match="Unknown store 'mysql'"):
        open_store(Config(store="mysql://rag@h/d"))
    assert Config(store="postgres://rag@h/d").resolved_database_url == "postgresql://rag@h/d"
    assert Config(store="postgres://rag@h/d", database_url="sqlite:///x.db").resolved_database_url == "sqlite:///x.db"
