"""The local store only ever deletes what is provably its own, and lets one writer in at a time."""

import subprocess
import sys
import textwrap
import time

import pytest
from pdfs import make_pdf

from rag import RAG
from rag.errors import InputError
from rag.stores.lock import StoreBusyError


@pytest.fixture
def docs(tmp_path):
    make_pdf(tmp_path / "docs" / "a.pdf", ["Alpha policy. Economy class for short flights."])
    return tmp_path / "docs"


def test_foreign_files_in_the_store_survive_an_ingest(fake_config, docs):
    app = RAG(fake_config, progress=False)
    app.ingest(docs, progress=False)
    root = fake_config.storage_dir
    planted = [root / "cache" / "notes.txt", root / "indexes" / "my-backup" / "keep.txt", root / ".tmp-mine",
               root / "cache" / "documents" / "0123.json"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    make_pdf(docs / "b.pdf", ["Beta policy. Sick leave is ten days."])
    report = app.ingest(docs, progress=False)
    assert report.added == ["b.pdf"]
    assert all(p.read_text() == "mine" for p in planted)


def test_a_folder_with_other_files_is_refused(fake_config, docs, tmp_path):
    busy = tmp_path / "project"
    busy.mkdir()
    (busy / "thesis.tex").write_text("...")
    app = RAG(fake_config.replace(storage_dir=busy), progress=False)
    with pytest.raises(InputError, match="is not empty and holds no index"):
        app.ingest(docs, progress=False)
    assert sorted(p.name for p in busy.iterdir()) == ["thesis.tex"]


def test_a_second_writer_fails_at_once_with_a_clear_message(fake_config, docs):
    root = fake_config.storage_dir
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rag.stores.lock import writer_lock
        with writer_lock(Path({str(root)!r})):
            print("locked", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        app = RAG(fake_config, progress=False)
        start = time.monotonic()
        with pytest.raises(StoreBusyError, match=rf"another ingest \(pid {holder.pid}\) is writing"):
            app.ingest(docs, progress=False)
        assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its process (kill -9 here): the next writer gets in without clean-up.
    assert RAG(fake_config, progress=False).ingest(docs, progress=False).added == ["a.pdf"]
