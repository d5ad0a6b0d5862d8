"""One contract for every store backend (``rag.stores.base.Store``): the same tests run against the
local folder store and a PostgreSQL + pgvector store on a throw-away server on 127.0.0.1. The
embedder is the unit tier's hash fake: these tests are about storage, not about vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import HashEmbedding
from pdfs import make_pdf
from pg_server import running_server

import rag.ingest.sync as sync
from rag import RAG, Config
from rag.embedding import EMBEDDERS, Embedder
from rag.errors import IndexMissingError
from rag.retrieval.nodes import ParserSpec
from rag.stores.base import FileVersion
from rag.stores.lock import StoreBusyError

BACKENDS = ("local", "postgresql")
QUESTION = "At what temperature does the alpha reactor run?"


@pytest.fixture(scope="module", autouse=True)
def hash_embedder():
    if "fake-hash" not in EMBEDDERS:
        EMBEDDERS.register("fake-hash", Embedder(name="fake-hash", help="test", description="test",
                                                 model_path=lambda: "-", load=lambda config: HashEmbedding()))


@pytest.fixture(scope="module")
def pg():
    yield from running_server(vector=True, password="contract-Secr3t")


_databases = iter(range(1_000_000))


@pytest.fixture(params=BACKENDS)
def config(request, tmp_path) -> Config:
    """An empty store of each backend."""
    store = "local"
    if request.param == "postgresql":
        store = request.getfixturevalue("pg").create_database(f"contract{next(_databases)}")
    return Config(store=store, storage_dir=tmp_path / "storage", embed_model="fake-hash")


@pytest.fixture
def folder(tmp_path) -> Path:
    make_pdf(tmp_path / "pdfs" / "alpha.pdf", ["Alpha report. The alpha reactor runs at 310 kelvin.",
                                               "Alpha maintenance happens every Tuesday."])
    make_pdf(tmp_path / "pdfs" / "beta.pdf", ["Beta manual. The beta pump moves 40 litres per minute."])
    return tmp_path / "pdfs"


def _texts(app: RAG, retriever: str = "basic") -> str:
    return " ".join(s.text for s in RAG(app.config, progress=False).retrieve(QUESTION, retriever))


def test_an_empty_store_has_no_manifest_and_says_what_to_do(config):
    app = RAG(config, progress=False)
    assert app.store.manifest() is None
    with pytest.raises(IndexMissingError, match="run `rag ingest PATH` first"):
        app.retrieve(QUESTION, "basic")


def test_ingest_is_incremental_and_reports_every_file(config, folder):
    app = RAG(config, progress=False)
    first = app.ingest(folder, progress=False)
    assert sorted(first.added) == ["alpha.pdf", "beta.pdf"] and first.embedded > 0
    assert set(first.indexes) == {"basic", "sentence_window", "auto_merging"}
    manifest = app.store.manifest()
    assert set(manifest["files"]) == {"alpha.pdf", "beta.pdf"} and manifest["embed_model"] == "fake-hash"
    assert manifest["source"] == str(folder.resolve())

    again = app.ingest(folder, progress=False)
    assert again.embedded == 0 and again.up_to_date and sorted(again.unchanged) == ["alpha.pdf", "beta.pdf"]
    assert any(m.startswith("Nothing changed") for m in again.messages)

    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])
    make_pdf(folder / "gamma.pdf", ["Gamma notes. Gamma rays are filtered by lead shielding."])
    changed = app.ingest(folder, progress=False)
    assert (changed.changed, changed.added, changed.unchanged) == (["alpha.pdf"], ["gamma.pdf"], ["beta.pdf"])
    assert "295 kelvin" in _texts(app) and "310 kelvin" not in _texts(app)

    (folder / "gamma.pdf").unlink()
    removed = app.ingest(folder, progress=False)
    assert removed.removed == ["gamma.pdf"] and removed.embedded == 0
    assert set(app.store.manifest()["files"]) == {"alpha.pdf", "beta.pdf"}


def test_an_interrupted_ingest_leaves_the_previous_index_and_the_lock_free(config, folder, monkeypatch):
    app = RAG(config, progress=False)
    app.ingest(folder, progress=False)
    before = app.store.manifest()["files"]
    make_pdf(folder / "alpha.pdf", ["Alpha report, second edition. The alpha reactor now runs at 295 kelvin."])

    def interrupted(config, texts):
        raise KeyboardInterrupt  # Ctrl-C while embedding the changed file

    monkeypatch.setattr(sync, "embed_texts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        app.ingest(folder, progress=False)
    monkeypatch.undo()
    assert app.store.manifest()["files"] == before and "310 kelvin" in _texts(app)
    assert app.ingest(folder, progress=False).changed == ["alpha.pdf"]
    assert "295 kelvin" in _texts(app)


def test_one_writer_at_a_time(config, folder):
    store = RAG(config, progress=False).store
    with store.writer(0):
        with pytest.raises(StoreBusyError, match="RAG_LOCK_TIMEOUT"):
            RAG(config, progress=False).ingest(folder, progress=False)
    assert sorted(RAG(config, progress=False).ingest(folder, progress=False).added) == ["alpha.pdf", "beta.pdf"]


def test_an_index_for_new_parameters_is_built_on_demand_and_kept(config, folder):
    app = RAG(config, progress=False)
    app.ingest(folder, progress=False)
    spec = ParserSpec.of("basic", {"chunk_size": 64, "chunk_overlap": 8})
    assert app.store.index_entry(spec) is None
    entry = sync.ensure_index(app.store, spec, progress=False)
    assert entry["kind"] == "basic" and entry["default"] is False and entry["nodes"] > 0
    assert sync.ensure_index(app.store, spec, progress=False) == entry  # built once
    make_pdf(folder / "gamma.pdf", ["Gamma notes. Gamma rays are filtered by lead shielding."])
    report = app.ingest(folder, progress=False)
    assert report.added == ["gamma.pdf"] and "basic" in report.indexes
    assert app.store.index_entry(spec)["default"] is False  # still there, still not a default
    assert "lead shielding" in " ".join(s.text for s in app.retrieve("gamma lead shielding", "basic:chunk_size=64"))


def test_stored_texts_and_nodes_read_back(config, folder):
    app = RAG(config, progress=False)
    app.ingest(folder, progress=False)
    manifest = app.store.manifest()
    info = manifest["files"]["alpha.pdf"]
    text = app.store.stored_text("alpha.pdf", info["sha256"])
    assert text.sha256 == info["sha256"] and text.pages == info["pages"] == 2 and "310 kelvin" in text.text
    assert app.store.stored_text("alpha.pdf", "0" * 64) is None
    spec = app.spec("auto_merging").parser_spec
    entry = app.store.index_entry(spec)
    stored = [app.store.stored_nodes(spec, FileVersion(n, f["sha256"], f["pages"])) for n, f in manifest["files"].items()]
    assert sum(len(s.parsed.nodes) for s in stored) == entry["nodes"]
    assert sum(len(s.vectors) for s in stored) == sum(sum(s.parsed.embed) for s in stored) == entry["vectors"]


@pytest.mark.parametrize("target", BACKENDS)
def test_an_index_copies_into_an_empty_store_without_embedding(config, target, folder, tmp_path, request, monkeypatch):
    from rag.stores import open_store

    source = RAG(config, progress=False)
    source.ingest(folder, progress=False)
    url = "local"
    if target == "postgresql":
        url = request.getfixturevalue("pg").create_database(f"copy{next(_databases)}")
    dest = open_store(config.replace(store=url, storage_dir=tmp_path / "copy"))
    monkeypatch.setattr(sync, "embed_texts", lambda *a: pytest.fail("copying embedded something"))
    done = sync.copy_index(source.store, dest)
    assert done["files"] == 2 and set(done["indexes"]) == set(source.store.manifest()["indexes"])
    with pytest.raises(Exception, match="already holds an index"):
        sync.copy_index(source.store, dest)
    shape = lambda m: {k: (e["kind"], e["nodes"], e["vectors"], e["default"]) for k, e in m["indexes"].items()}  # noqa: E731
    assert dest.manifest()["files"] == source.store.manifest()["files"]
    assert shape(dest.manifest()) == shape(source.store.manifest())
    copied = RAG(dest.config, progress=False)
    for retriever in ("basic", "auto_merging", "sentence_window:mode=hybrid"):
        assert [s.text for s in copied.retrieve(QUESTION, retriever)] == [s.text for s in source.retrieve(QUESTION, retriever)]
