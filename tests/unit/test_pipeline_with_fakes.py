"""The whole pipeline on small real PDFs, with the fake embedder and LLM: our own logic, fast."""

import pytest
from fakes import PROMPTS, EchoLLM
from pdfs import make_pdf

from rag import RAG

PAGES = [
    "Travel policy. Economy class is required for flights under six hours.",
    "Sick leave. Full-time employees receive ten working days of paid sick leave per year.",
    "Passwords. Company accounts need passwords of at least fourteen characters.",
]


@pytest.fixture
def app(tmp_path, fake_config):
    make_pdf(tmp_path / "docs" / "handbook.pdf", PAGES)
    app = RAG(fake_config, progress=False)
    report = app.ingest(tmp_path / "docs", progress=False)
    assert report.added == ["handbook.pdf"] and report.pages == 3 and not report.failed
    return app


@pytest.mark.parametrize("kind", ["basic", "sentence_window", "auto_merging"])
def test_query_cites_the_page_that_holds_the_answer(app, kind):
    result = app.query("How many days of paid sick leave?", retriever=kind)
    assert result.sources, kind
    top = result.sources[0]
    assert top.file == "handbook.pdf" and top.page <= 2 <= top.page_end, (kind, top)
    assert "[1]" in result.answer and result.finish_reason == "stop"
    assert result.usage["prompt_tokens"] > 0 and result.usage["total_tokens"] > result.usage["prompt_tokens"]
    assert set(result.timings) == {"retrieve", "rerank", "generate", "total"}
    assert result.timings["total"] >= result.timings["retrieve"]


def test_retrieve_calls_no_llm(app):
    PROMPTS.clear()
    sources = app.retrieve("minimum password length", "basic", top_k=1)
    assert len(sources) == 1 and sources[0].page_end >= 3 and not PROMPTS


def test_reingest_is_incremental(app, tmp_path):
    report = app.ingest(tmp_path / "docs", progress=False)
    assert report.unchanged == ["handbook.pdf"] and report.embedded == 0
    assert any("Nothing changed" in m for m in report.messages)


def test_prompt_numbers_sources_and_respects_the_budget():
    from rag.generation.synthesize import CitingSynthesizer

    synth = CitingSynthesizer(llm=EchoLLM(), context_window=400, max_new_tokens=50)
    chunks = [" ".join(f"word{i}" for i in range(60)) for _ in range(4)]
    system, user = synth.messages("Which word?", chunks)
    assert system.role.value == "system" and "[1]" in user.content and "[2]" in user.content
    assert "[4]" not in user.content  # the budget (400 - 50 - 200 - system) leaves room for ~2 chunks
    total = sum(len(m.content.split()) for m in (system, user))
    assert total <= 400 - 50


def test_pages_follow_the_text(tmp_path):
    from rag.ingest.parse import parse
    from rag.retrieval.nodes import ParserSpec
    from rag.types import PdfText

    text = "Page one talks about apples.\n\nPage two talks about pears.\n\nPage three talks about plums."
    starts = [0, text.index("Page two"), text.index("Page three")]
    pdf = PdfText(name="f.pdf", sha256="0" * 64, text=text, page_starts=starts)
    parsed = parse(ParserSpec.of("sentence_window", {"window_size": 1}), pdf)
    pages = [(n.metadata["original_text"].strip()[:14], n.metadata["page"], n.metadata["page_end"])
             for n in parsed.nodes]
    # Each sentence's window reaches one sentence either side: its pages do too.
    assert pages == [("Page one talks", 1, 2), ("Page two talks", 1, 3), ("Page three tal", 2, 3)]
    assert all(n.excluded_llm_metadata_keys for n in parsed.nodes)  # no page lines in the LLM prompt


def test_no_passage_reaches_the_llm_twice(app):
    import re

    for kind in ("sentence_window:window_size=3,top_k=6,rerank_top_n=3", "auto_merging", "basic"):
        texts = [re.sub(r"\s+", " ", s.text).strip() for s in app.retrieve("paid sick leave days", kind)]
        assert texts and len(set(texts)) == len(texts), kind
        assert not any(a != b and a in b for a in texts for b in texts), kind


def test_distinct_text_keeps_the_best_rank_of_what_it_merges():
    from llama_index.core.schema import NodeWithScore, TextNode

    from rag.retrieval.distinct import DistinctText

    nodes = [NodeWithScore(node=TextNode(text=t), score=s) for t, s in
             [("b c", 0.9), ("x y", 0.8), ("a b c d", 0.7), ("b  C", 0.6), ("y", 0.5)]]
    kept = DistinctText().postprocess_nodes(nodes)
    assert [(n.node.text, n.score) for n in kept] == [("a b c d", 0.9), ("x y", 0.8)]


def test_citations_are_checked_against_the_sources():
    from rag.app import citations

    assert citations("Ten days [1], see also [3] and [2, 7].", sources=3) == ([1, 2, 3], [7])
    assert citations("No citation here.", sources=2) == ([], [])


def test_answer_says_when_it_was_cut_off(app):
    result = app.query("How many days of paid sick leave?")
    assert result.cited == [1] and result.unknown_citations == []
    result.finish_reason = "length"
    assert "cut off at max_new_tokens" in str(result) and result.as_dict()["finish_reason"] == "length"


def test_streamed_answer_equals_the_result(app):
    from rag.app import QueryStream

    stream = app.query("How many days of paid sick leave?", retriever="basic", stream=True)
    assert isinstance(stream, QueryStream)
    tokens = list(stream)
    result = stream.result
    assert tokens and "".join(tokens).strip() == result.answer
    assert result.sources and result.cited == [1]
    assert set(result.timings) == {"retrieve", "rerank", "generate", "total"}
    assert str(result) == result.answer + result.footer() and "Sources:" in result.footer()
