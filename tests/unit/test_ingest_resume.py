"""An interrupted ingest keeps the embedding work of the files it finished and redoes only the rest."""

import pytest
from pdfs import make_pdf

import rag.ingest.sync as sync
from rag import RAG


def test_an_interrupted_ingest_resumes_after_the_last_finished_group(fake_config, tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    for i in range(4):
        make_pdf(folder / f"doc{i}.pdf", [" ".join(f"Sentence {i}-{j} about topic {j}." for j in range(30))])
    monkeypatch.setattr(sync, "GROUP_TEXTS", 1)  # one file per group: each file's cache is written when done
    real, calls = sync.embed_texts, []

    def interrupted(config, texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the basic index
        return real(config, texts)

    monkeypatch.setattr(sync, "embed_texts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        RAG(fake_config, progress=False).ingest(folder, progress=False)
    assert not (fake_config.storage_dir / "manifest.json").exists()  # nothing half-committed

    monkeypatch.setattr(sync, "embed_texts", real)
    full = RAG(fake_config.replace(storage_dir=tmp_path / "fresh"), progress=False).ingest(folder, progress=False)
    resumed = RAG(fake_config, progress=False).ingest(folder, progress=False)
    assert sorted(resumed.added) == [f"doc{i}.pdf" for i in range(4)]
    assert 0 < resumed.embedded < full.embedded  # the finished files were not embedded again
    assert resumed.indexes["basic"]["nodes"] == full.indexes["basic"]["nodes"]
