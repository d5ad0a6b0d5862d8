"""First-stage modes (dense, BM25, hybrid), the BM25 index's upkeep, the stored-vector reranker,
and the optional embedders, with real PDFs and the real bundled models."""

from __future__ import annotations

import shutil

import pytest

from pdfs import make_cjk_pdf, make_pdf
from rag.app import RAG
from rag.config import Config
from rag.errors import IndexMissingError

KINDS = ["basic", "sentence_window", "auto_merging"]
MODES = ["dense", "bm25", "hybrid"]

VALVES = ("The intake assembly uses part number QZ-7781-B for the left valve seal. "
          "Replace the seal every eighteen months. The right valve uses a standard gasket.")
FLEET = ("Fleet vehicles are serviced at the central depot. Drivers log mileage every Friday. "
         "Fuel cards are issued by the finance office and must be returned on leaving.")
GARDEN = ("The garden committee meets monthly. Tomatoes are planted in April and harvested in August. "
          "Compost is turned weekly by volunteers.")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modes-corpus")
    make_pdf(folder / "valves.pdf", [FLEET, VALVES])
    make_pdf(folder / "fleet.pdf", [FLEET])
    make_pdf(folder / "garden.pdf", [GARDEN])
    return folder


@pytest.fixture(scope="module")
def app(corpus, tmp_path_factory):
    app = RAG(Config(storage_dir=tmp_path_factory.mktemp("modes-storage")), progress=False)
    app.ingest(corpus, progress=False)
    return app


def test_bm25_finds_an_exact_code_and_hybrid_keeps_it(app):
    question = "Which seal is QZ-7781-B?"
    for kind in KINDS:
        lexical = app.retrieve(question, f"{kind}:mode=bm25")
        assert lexical and lexical[0].file == "valves.pdf" and lexical[0].page <= 2 <= lexical[0].page_end, kind
        assert "QZ-7781-B" in lexical[0].text
        fused = app.retrieve(question, f"{kind}:mode=hybrid")
        assert any("QZ-7781-B" in s.text for s in fused), kind


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
def test_every_kind_runs_in_every_mode_without_repeating_a_passage(app, kind, mode):
    sources = app.retrieve("When are tomatoes harvested?", f"{kind}:mode={mode}")
    assert sources, (kind, mode)
    assert sources[0].file == "garden.pdf", (kind, mode, [s.file for s in sources])
    texts = [" ".join(s.text.split()) for s in sources]
    assert all(a not in b for i, a in enumerate(texts) for j, b in enumerate(texts) if i != j)


def test_a_question_without_shared_terms_gets_nothing_from_bm25(app):
    assert app.retrieve("zebra xylophone quasar", "basic:mode=bm25") == []


def test_a_changed_file_leaves_no_stale_bm25_entries(tmp_path):
    folder = tmp_path / "pdfs"
    make_pdf(folder / "valves.pdf", [VALVES])
    make_pdf(folder / "garden.pdf", [GARDEN])
    app = RAG(Config(storage_dir=tmp_path / "storage"), progress=False)
    app.ingest(folder, progress=False)
    assert "QZ-7781-B" in app.retrieve("QZ-7781-B", "basic:mode=bm25")[0].text
    make_pdf(folder / "valves.pdf", ["The intake assembly now uses part number RT-1200 for every seal."])
    app.ingest(folder, progress=False)
    assert all("QZ-7781-B" not in s.text for s in app.retrieve("QZ-7781-B seal", "basic:mode=bm25"))
    assert "RT-1200" in app.retrieve("RT-1200", "basic:mode=bm25")[0].text


def test_fusion_weights_change_the_order(app):
    question = "Which seal is QZ-7781-B and when are drivers logging mileage?"
    lexical_heavy = app.retrieve(question, "basic:mode=hybrid,bm25_weight=5,dense_weight=0.01")
    lexical = app.retrieve(question, "basic:mode=bm25")
    assert [s.text for s in lexical_heavy][: len(lexical)] == [s.text for s in lexical]


# A question whose answer sits in a passage it shares no name with: the film's paragraph names the
# director, the director's paragraph answers. Three decoys share the question's own words.
BRIDGE = {
    "film.pdf": "Harbor Lights is a 1998 drama film directed by Marta Kowalczyk, about a lighthouse keeper.",
    "director.pdf": "Marta Kowalczyk was raised in the port city of Gdynia and trained as a painter in Krakow.",
    "band.pdf": "Harbor Lights is also an indie band whose members grew up together in Ohio.",
    "festival.pdf": "The Harbor Lights festival is held where the old harbor lights grow dim each winter.",
    "hotel.pdf": "The Harbor Lights hotel grew out of a fishing inn near the harbor.",
}


def test_a_second_hop_follows_the_top_passage_to_the_answer(tmp_path):
    folder = tmp_path / "pdfs"
    for name, text in BRIDGE.items():
        make_pdf(folder / name, [text])
    app = RAG(Config(storage_dir=tmp_path / "storage"), progress=False)
    app.ingest(folder, progress=False)
    question = "Where did the director of the film Harbor Lights grow up?"
    for kind in KINDS:
        one = [s.file for s in app.retrieve(question, f"{kind}:top_k=3,rerank_top_n=3,hops=1"
                                            if kind != "basic" else "basic:top_k=3,hops=1")]
        two = [s.file for s in app.retrieve(question, f"{kind}:top_k=3,rerank_top_n=3,hops=2"
                                            if kind != "basic" else "basic:top_k=3,hops=2")]
        assert "director.pdf" not in one and "director.pdf" in two, (kind, one, two)
        assert two[0] == one[0] == "film.pdf", (kind, one, two)  # the first search's best stays first
    assert "hops=2" in app.spec("basic:hops=2").name and "hops" not in app.spec("basic").name
    assert "hops" not in app.spec("sentence_window").name and "hops=2" in app.spec("auto_merging").name


def test_stored_vector_rerank_finds_the_evidence_as_well_as_embedding_the_final_texts(sample_app, sample_questions):
    """The embedding reranker scores windows and merged parents by the mean of their parts' stored
    vectors; it must find the evidence pages about as often as embedding each final text does."""
    stored = RAG(sample_app.config.replace(reranker="embedding"), progress=False)
    exact = RAG(sample_app.config.replace(reranker="embedding-exact"), progress=False)
    for kind in ["sentence_window", "auto_merging"]:
        fast = sum(_has_evidence(stored.retrieve(q["question"], kind), q) for q in sample_questions)
        slow = sum(_has_evidence(exact.retrieve(q["question"], kind), q) for q in sample_questions)
        default = sum(_has_evidence(sample_app.retrieve(q["question"], kind), q) for q in sample_questions)
        assert fast >= slow - 1 and fast >= 9 and default >= 9, (kind, fast, slow, default)


def _has_evidence(sources, question) -> bool:
    return any(s.file == e["file"] and s.page <= e["page"] <= s.page_end for s in sources for e in question["evidence"])


def test_multilingual_embedder_retrieves_a_chinese_pdf(tmp_path):
    folder = tmp_path / "pdfs"
    make_cjk_pdf(folder / "huanbao.pdf", ["本公司的污水处理厂每天处理五万吨废水。\n处理后的水用于灌溉城市公园。"])
    make_cjk_pdf(folder / "caiwu.pdf", ["第三季度的营业收入增长了百分之十二。\n利润主要来自海外市场。"])
    make_pdf(folder / "garden.pdf", [GARDEN])
    app = RAG(Config(storage_dir=tmp_path / "storage", embed_model="multilingual-e5-small"), progress=False)
    report = app.ingest(folder, progress=False)
    assert not report.skipped and report.embedded > 0
    for mode in ["dense", "hybrid"]:
        top = app.retrieve("污水处理厂每天处理多少废水？", f"basic:mode={mode}")[0]
        assert top.file == "huanbao.pdf" and "污水" in top.text, mode
        assert app.retrieve("营业收入增长了多少？", f"basic:mode={mode}")[0].file == "caiwu.pdf", mode
    assert app.retrieve("When are tomatoes harvested?", "basic:mode=dense")[0].file == "garden.pdf"


def test_int8_onnx_embedder_is_exported_locally_and_retrieves(tmp_path, sample_pdfs, sample_questions):
    config = Config(storage_dir=tmp_path / "storage", embed_model="minilm-int8", model_cache_dir=tmp_path / "models")
    app = RAG(config, progress=False)
    app.ingest(sample_pdfs, progress=False)
    assert list((tmp_path / "models" / "embeddings" / "onnx").glob("*-int8.onnx"))
    hits = sum(_has_evidence(app.retrieve(q["question"], "basic:mode=dense"), q) for q in sample_questions)
    assert hits >= 10, f"{hits} of {len(sample_questions)}"


def test_damaged_manifest_and_index_are_named_and_repaired_by_ingest(tmp_path, corpus):
    app = RAG(Config(storage_dir=tmp_path / "storage"), progress=False)
    app.ingest(corpus, progress=False)
    manifest = tmp_path / "storage" / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(good[: len(good) // 2])
    with pytest.raises(IndexMissingError, match="manifest.json is damaged.*rag ingest"):
        RAG(Config(storage_dir=tmp_path / "storage"), progress=False).retrieve("tomatoes", "basic")
    report = app.ingest(corpus, progress=False)
    assert any("damaged" in m for m in report.messages) and report.embedded == 0  # caches reused
    docstore = next((tmp_path / "storage" / "indexes").glob("*/docstore.json"))
    docstore.write_text("{")
    report = RAG(Config(storage_dir=tmp_path / "storage"), progress=False).ingest(corpus, progress=False)
    assert any("damaged: rebuilding" in m for m in report.messages)
    fresh = RAG(Config(storage_dir=tmp_path / "storage"), progress=False)
    assert fresh.retrieve("When are tomatoes harvested?", "basic")[0].file == "garden.pdf"
    shutil.rmtree(tmp_path / "storage")
