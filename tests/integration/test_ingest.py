"""Ingestion: persistence, incremental updates, bad input, and interrupted runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pdfs import make_encrypted_pdf, make_image_only_pdf, make_pdf

from rag import RAG, Config
from rag.errors import IndexMissingError, InputError

PYTHON = sys.executable


def _rag(*args, cwd=None, **kwargs):
    return subprocess.run([PYTHON, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, **kwargs)


def test_index_persists_and_reloads_in_a_new_process(sample_app):
    question = "What is the membrane cartridge replacement interval?"
    here = [(s.citation, round(s.score, 4)) for s in sample_app.retrieve(question, "auto_merging")]
    proc = _rag("--storage-dir", str(sample_app.config.storage_dir), "retrieve", question,
                "-r", "auto_merging", "--json")
    assert proc.returncode == 0, proc.stderr
    there = [(s["citation"], round(s["score"], 4)) for s in json.loads(proc.stdout)]
    assert there == here and here


def test_manifest_records_models_parameters_and_hashes(sample_app, sample_pdfs):
    manifest = json.loads((Path(sample_app.config.storage_dir) / "manifest.json").read_text())
    assert manifest["embed_model"] == Config().embed_model and manifest["embed_dim"] == 384
    assert set(manifest["files"]) == {p.name for p in sample_pdfs.glob("*.pdf")}
    assert all(len(f["sha256"]) == 64 and f["pages"] >= 3 for f in manifest["files"].values())
    kinds = {e["kind"]: e["params"] for e in manifest["indexes"].values() if e["default"]}
    assert kinds["sentence_window"]["window_size"] == 3
    assert kinds["auto_merging"]["chunk_sizes"] == [2048, 512, 128]


def test_incremental_reingest(tmp_path):
    docs = tmp_path / "docs"
    make_pdf(docs / "alpha.pdf", ["The alpha project budget is 410 thousand euros.", "Alpha ends in March."])
    make_pdf(docs / "beta.pdf", ["The beta team meets every Tuesday at 10:00 in room B12."])
    make_pdf(docs / "gamma.pdf", ["Gamma rays are not part of this handbook."])
    app = RAG(Config(storage_dir=tmp_path / "store"))
    first = app.ingest(docs, progress=False)
    assert sorted(first.added) == ["alpha.pdf", "beta.pdf", "gamma.pdf"] and first.embedded > 0

    again = app.ingest(docs, progress=False)
    assert again.up_to_date and again.embedded == 0 and sorted(again.unchanged) == ["alpha.pdf", "beta.pdf", "gamma.pdf"]
    assert any("Nothing changed" in m for m in again.messages)

    make_pdf(docs / "beta.pdf", ["The beta team now meets every Thursday at 15:00 in room C7."])
    (docs / "gamma.pdf").unlink()
    update = app.ingest(docs, progress=False)
    assert update.changed == ["beta.pdf"] and update.removed == ["gamma.pdf"] and update.unchanged == ["alpha.pdf"]
    texts = " ".join(s.text for s in app.retrieve("When does the beta team meet?", "basic"))
    assert "Thursday" in texts and "Tuesday" not in texts
    files = {s.file for s in app.retrieve("gamma rays handbook", "basic", top_k=10)}
    assert "gamma.pdf" not in files


def test_changing_parser_parameters_or_embedding_model_triggers_a_rebuild(tmp_path):
    docs = tmp_path / "docs"
    make_pdf(docs / "a.pdf", ["Sentence one is here. Sentence two follows. Sentence three ends it."])
    RAG(Config(storage_dir=tmp_path / "s")).ingest(docs, progress=False)
    report = RAG(Config(storage_dir=tmp_path / "s", window_size=1)).ingest(docs, progress=False)
    assert any("Parser parameters of sentence_window changed" in m and "window_size: 3 -> 1" in m
               for m in report.messages)
    assert report.embedded > 0

    other = Config(storage_dir=tmp_path / "s", embed_model="/nonexistent/model")
    with pytest.raises(IndexMissingError, match="built with embedding model 'minilm-int8'"):
        RAG(other).retrieve("x", "basic")


def test_bad_inputs_are_skipped_with_reasons_and_the_rest_is_ingested(tmp_path, sample_pdfs):
    docs = tmp_path / "docs"
    good = make_pdf(docs / "good.pdf", ["The cafeteria serves lunch from 11:30 to 14:00."])
    make_encrypted_pdf(docs / "locked.pdf", good)
    (docs / "corrupt.pdf").write_bytes(good.read_bytes()[:400])
    (docs / "empty.pdf").write_bytes(b"")
    (docs / "fake.pdf").write_text("this is not a pdf at all")
    make_image_only_pdf(docs / "scan.pdf")
    (docs / "notes.txt").write_text("not a pdf")

    report = RAG(Config(storage_dir=tmp_path / "s")).ingest(docs, progress=False)
    assert report.added == ["good.pdf"]
    reasons = {s.path: s.reason for s in report.skipped}
    assert "encrypted" in reasons["locked.pdf"] and "qpdf" in reasons["locked.pdf"]
    assert "corrupt" in reasons["corrupt.pdf"] or "cannot read" in reasons["corrupt.pdf"]
    assert "empty" in reasons["empty.pdf"]
    assert "not a PDF" in reasons["fake.pdf"]
    assert "no extractable text" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "not a PDF" in reasons["notes.txt"]
    assert {s.path for s in report.failed} == {"locked.pdf", "corrupt.pdf", "empty.pdf", "fake.pdf", "scan.pdf"}

    proc = _rag("--storage-dir", str(tmp_path / "s2"), "ingest", str(docs), "--quiet")
    assert proc.returncode == 1
    assert "Skipped 5 PDF(s)" in proc.stderr and "locked.pdf" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_path_and_folder_without_pdfs(tmp_path):
    app = RAG(Config(storage_dir=tmp_path / "s"))
    with pytest.raises(InputError, match="no such file or directory"):
        app.ingest(tmp_path / "nowhere", progress=False)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "readme.md").write_text("hi")
    with pytest.raises(InputError, match="no PDF files found"):
        app.ingest(tmp_path / "empty_dir", progress=False)
    proc = _rag("--storage-dir", str(tmp_path / "s"), "ingest", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "nowhere: no such file" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(IndexMissingError, match="rag ingest"):
        app.query("anything?")


def test_all_pdfs_bad_leaves_previous_index_untouched(tmp_path):
    docs = tmp_path / "docs"
    make_pdf(docs / "ok.pdf", ["Parking permits cost 30 euros per month."])
    app = RAG(Config(storage_dir=tmp_path / "s"))
    app.ingest(docs, progress=False)
    manifest = (tmp_path / "s" / "manifest.json").read_text()
    (docs / "ok.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(InputError, match="none of the PDFs could be ingested"):
        app.ingest(docs, progress=False)
    assert (tmp_path / "s" / "manifest.json").read_text() == manifest
    assert "30 euros" in app.retrieve("How much is a parking permit?", "basic")[0].text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_ingest_leaves_the_previous_index_loadable(tmp_path, sig):
    docs = tmp_path / "docs"
    make_pdf(docs / "first.pdf", ["The first document says the launch code is ORCHID-7."])
    store = tmp_path / "s"
    RAG(Config(storage_dir=store)).ingest(docs, progress=False)
    # A long document so that the second ingest is still embedding when the signal arrives.
    filler = [" ".join(f"Clause {p}.{i}: the supplier shall deliver item {i} of batch {p} on time."
                       for i in range(40)) for p in range(60)]
    make_pdf(docs / "second.pdf", filler)
    # As from a terminal: a job started in the background by a shell inherits an ignored SIGINT.
    proc = subprocess.Popen([PYTHON, "-m", "rag.cli", "--storage-dir", str(store), "ingest", str(docs)],
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    deadline = time.time() + 300
    # Sentence windows are embedded second and take longest: signal as soon as they start. Read the
    # progress output in whole chunks, so the reader never lags behind a fast ingest.
    while "Embedding sentence_window" not in seen and time.time() < deadline and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 65536).decode(errors="replace")
    assert "Embedding sentence_window" in seen, "the ingest never started embedding"
    assert proc.poll() is None, "the ingest finished before it could be interrupted: make the PDF longer"
    proc.send_signal(sig)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert "interrupted" in rest and "Traceback" not in rest

    app = RAG(Config(storage_dir=store))
    manifest = json.loads((store / "manifest.json").read_text())
    assert list(manifest["files"]) == ["first.pdf"]
    for kind in ("basic", "sentence_window", "auto_merging"):
        assert "ORCHID-7" in app.retrieve("What is the launch code?", kind)[0].text
    report = app.ingest(docs, progress=False)  # and the next run completes normally
    assert report.added == ["second.pdf"] and report.unchanged == ["first.pdf"]


def test_chunks_carry_the_title_and_section_they_sit_under_into_retrieval_not_into_the_prompt(tmp_path):
    """A chunk cut from the middle of a section ("Deposit must happen within 12 months ...") names
    neither the repository nor the lab; its title and heading path do, for the embedding and BM25."""
    filler = " ".join(f"Field campaign {i} measured turbidity and grain size at station {i}." for i in range(40))
    text = ("Research Data Policy of the Tidal Flats Lab\n1. Field Work\n" + filler + "\n"
            "7. Sharing and Publication\n7.1 Deposit in the repository\n" + filler +
            " Deposit must happen within 12 months of the end of data collection.\n7.2 Licences\n"
            "Data sets are released under CC BY 4.0.\n")
    make_pdf(tmp_path / "pdfs" / "policy.pdf", [text])
    app = RAG(Config(storage_dir=tmp_path / "storage"))
    assert not app.ingest(tmp_path / "pdfs", progress=False).failed
    from llama_index.core.schema import MetadataMode

    index, _ = app.index(app.spec("basic"))
    nodes = list(index.docstore.docs.values())
    deadline = next(n for n in nodes if "within 12 months" in n.get_content(metadata_mode=MetadataMode.NONE))
    assert deadline.metadata["title"] == "Research Data Policy of the Tidal Flats Lab"
    assert deadline.metadata["section"] == "7. Sharing and Publication > 7.1 Deposit in the repository"
    assert "section: 7. Sharing and Publication > 7.1 Deposit" in deadline.get_content(metadata_mode=MetadataMode.EMBED)
    assert "section:" not in deadline.get_content(metadata_mode=MetadataMode.LLM)  # the LLM reads the text alone
    sources = app.retrieve("By when must Tidal Flats Lab data be deposited in the repository?", "basic")
    assert any("within 12 months" in s.text for s in sources[:2]), [s.text[:80] for s in sources]
