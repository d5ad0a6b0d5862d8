"""The torture corpus (tests/torture.py) through a real ingest with the bundled embedder: every
entry gets the right reason, every readable file is indexed and found, nothing internal leaks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torture
from pdfs import make_pdf

from rag import RAG, Config


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    base = tmp_path_factory.mktemp("torture")
    folder = base / "corpus"
    expects = torture.build(folder)
    app = RAG(Config(storage_dir=base / "storage"), progress=False)
    report = app.ingest(folder, progress=False)
    return app, report, expects, folder


def test_every_unreadable_entry_gets_its_reason(ingested):
    _, report, expects, _ = ingested
    shown = {s.path: s for s in report.skipped}
    wanted = {e.name: e for e in expects if not e.readable}
    assert sorted(shown) == sorted(wanted), "skipped entries differ from the expected ones"
    for name, expect in wanted.items():
        assert expect.reason in shown[name].reason, (name, shown[name].reason)
        assert shown[name].failed == expect.failed, name
    assert {s.path for s in report.failed} == {e.name for e in expects if not e.readable and e.failed}


def test_reasons_are_one_plain_line_without_internals(ingested):
    _, report, _, _ = ingested
    for skipped in report.skipped:
        line = str(skipped)
        assert "\n" not in line and "\r" not in line, line
        for internal in ("Error", "Future", "0x", "Traceback", "<", "pypdf"):
            assert internal not in skipped.reason, (skipped.path, skipped.reason)


def test_every_readable_file_is_indexed(ingested):
    app, report, expects, _ = ingested
    readable = sorted(e.name for e in expects if e.readable)
    assert sorted(report.added) == readable
    manifest = json.loads((Path(app.config.storage_dir) / "manifest.json").read_text())
    assert sorted(manifest["files"]) == readable
    assert all(info["pages"] == 2 for info in manifest["files"].values())


@pytest.mark.parametrize("name", ["plain.pdf", "owner_only_aes128.pdf", "owner_only_aes256.pdf",
                                  "owner_only_rc4128.pdf", "owner_only_rc440.pdf", "with_password.pdf",
                                  "locked folder/inside.pdf", "linked folder/outside.pdf", "folder.pdf/inner.pdf",
                                  "unicodé 日本 файл.pdf", "new\\nline.pdf", "latin1-\\xe9.pdf", "duplicate_b.pdf"])
def test_readable_files_are_found_by_their_text(ingested, name):
    app, _, expects, _ = ingested
    phrase = next(e.phrase for e in expects if e.name == name)
    sources = app.retrieve(f"When does the {phrase}?", "basic", top_k=4)
    assert name in {s.file for s in sources}, (name, [s.citation for s in sources])
    assert any(phrase in s.text for s in sources if s.file == name)


@pytest.mark.parametrize("text, page", [(torture.CHINESE, 1), (torture.JAPANESE, 1), (torture.ARABIC, 2)])
def test_cjk_and_arabic_text_is_stored_in_reading_order(ingested, text, page):
    app, _, _, _ = ingested
    sources = app.retrieve(text, "sentence_window", top_k=3)
    hits = [s for s in sources if s.file == "scripts.pdf" and text in s.text]
    assert hits and hits[0].page <= page <= hits[0].page_end, [s.citation for s in sources]


def test_reading_the_corpus_prints_nothing(tmp_path, capfd):
    """pypdf's repair messages and warnings stay off the terminal; failures come back as reasons."""
    from rag.errors import UnreadablePdfError
    from rag.ingest.pdf import find_pdfs, read_pdf

    torture.build(tmp_path / "corpus")
    found, _ = find_pdfs(tmp_path / "corpus")
    failures = 0
    for file, name in found:
        try:
            read_pdf(file, name)
        except UnreadablePdfError:
            failures += 1
    out, err = capfd.readouterr()
    assert failures >= 8
    assert out == "" and err == "", (out + err)[:2000]


def test_password_as_an_argument(tmp_path):
    from rag.errors import UnreadablePdfError
    from rag.ingest.pdf import read_pdf

    data = torture.encrypted(torture.pdf_bytes("argkey", tmp_path), "AES-256", user_password="pw 1")
    path = tmp_path / "locked.pdf"
    path.write_bytes(data)
    assert "argkey office opens at nine" in read_pdf(path, "locked.pdf", password="pw 1").text
    with pytest.raises(UnreadablePdfError, match="the password given does not open this PDF"):
        read_pdf(path, "locked.pdf", password="nope")
    with pytest.raises(UnreadablePdfError, match="encrypted with a password: put the password in locked.pdf.password"):
        read_pdf(path, "locked.pdf")


def test_file_replaced_during_ingest_is_stored_with_the_text_that_was_read(tmp_path, monkeypatch):
    """The file changes after it was hashed and before it is parsed: what is stored (text and hash)
    is the version that was parsed, and the next ingest agrees with it."""
    import rag.ingest.sync as sync

    docs = tmp_path / "docs"
    path = torture.text_pdf(docs / "changing.pdf", "firstversion")
    make_pdf(docs / "steady.pdf", ["The steady file never changes."])
    new = torture.pdf_bytes("secondversion", tmp_path)
    real_read = sync.read_pdf

    def swap_then_read(file, name, *args, **kwargs):
        if name == "changing.pdf":
            Path(file).write_bytes(new)
        return real_read(file, name, *args, **kwargs)

    monkeypatch.setattr(sync, "read_pdf", swap_then_read)
    app = RAG(Config(storage_dir=tmp_path / "storage"), progress=False)
    report = app.ingest(docs, progress=False)
    assert sorted(report.added) == ["changing.pdf", "steady.pdf"]
    manifest = json.loads((tmp_path / "storage" / "manifest.json").read_text())
    assert manifest["files"]["changing.pdf"]["sha256"] == hashlib.sha256(new).hexdigest() == \
        hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(sync, "read_pdf", real_read)
    again = app.ingest(docs, progress=False)
    assert again.up_to_date and sorted(again.unchanged) == ["changing.pdf", "steady.pdf"]
    texts = [s.text for s in app.retrieve("When does the secondversion office open?", "basic", top_k=2)]
    assert any("secondversion" in t for t in texts) and not any("firstversion" in t for t in texts)


def test_file_deleted_during_ingest_is_reported(tmp_path, monkeypatch):
    import rag.ingest.sync as sync

    docs = tmp_path / "docs"
    make_pdf(docs / "stays.pdf", ["The archive room is on the second floor."])
    make_pdf(docs / "vanishes.pdf", ["This file is deleted before it is read."])
    real_hash = sync.file_sha256

    def delete_then_hash(file):
        if Path(file).name == "vanishes.pdf":
            Path(file).unlink()
        return real_hash(file)

    monkeypatch.setattr(sync, "file_sha256", delete_then_hash)
    report = RAG(Config(storage_dir=tmp_path / "storage"), progress=False).ingest(docs, progress=False)
    assert report.added == ["stays.pdf"]
    assert [(s.path, s.failed) for s in report.failed] == [("vanishes.pdf", True)]
    assert "disappeared while it was being ingested" in report.failed[0].reason


def test_cli_names_every_failure_on_one_line_and_exits_1(ingested, tmp_path):
    _, report, _, folder = ingested
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--storage-dir", str(tmp_path / "storage"), "ingest",
                           str(folder), "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "pypdf" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    for failed in report.failed:
        assert sum(failed.path in line and failed.reason[:40] in line for line in lines) == 1, failed.path


def test_single_paths_that_are_no_readable_file_say_what_they_are(tmp_path):
    import os

    from rag.errors import InputError
    from rag.ingest.pdf import find_pdfs

    os.symlink("gone.pdf", tmp_path / "dangling.pdf")
    os.symlink("loop2.pdf", tmp_path / "loop1.pdf")
    os.symlink("loop1.pdf", tmp_path / "loop2.pdf")
    os.mkfifo(tmp_path / "pipe.pdf")
    for name, reason in [("dangling.pdf", "a broken symbolic link (it points to gone.pdf"),
                         ("loop1.pdf", "a symbolic link loop"), ("pipe.pdf", "not a regular file")]:
        with pytest.raises(InputError, match=reason.replace("(", r"\(")):
            find_pdfs(tmp_path / name)
    torture.text_pdf(tmp_path / "box.pdf" / "real.pdf", "boxed")  # a folder named like a PDF: walked
    assert [name for _, name in find_pdfs(tmp_path / "box.pdf")[0]] == ["real.pdf"]
