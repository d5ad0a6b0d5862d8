"""Stage 2: split a PDF's text into the nodes each retriever kind needs, pages attached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.ingest.sections import Sections
from rag.retrieval.nodes import ParsedNodes, ParserSpec
from rag.types import PdfText

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

# Page keys are for citations, not for similarity: keep them out of embeddings.
PAGE_KEYS = ["page", "page_end"]


def parse(spec: ParserSpec, pdf: PdfText) -> ParsedNodes:
    """The nodes of ``pdf`` for ``spec``, built by the spec's retriever kind, with pages attached."""
    from llama_index.core import Document

    from rag.retrieval import RETRIEVER_KINDS

    kind = RETRIEVER_KINDS.get(spec.kind)
    document = Document(
        text=pdf.text,
        id_=f"{pdf.name}@{pdf.sha256[:16]}",
        metadata={"file_name": pdf.name},
        excluded_embed_metadata_keys=list(PAGE_KEYS),
    )
    params = dict(spec.params)
    nodes = kind.node_parser(params).get_nodes_from_documents([document])
    _attach_pages(nodes, pdf, window=params.get("window_size"))
    _attach_sections(nodes, pdf)
    return ParsedNodes(nodes=nodes, embed=kind.embedded(nodes))


def _attach_pages(nodes: list[BaseNode], pdf: PdfText, window: int | None = None) -> None:
    """Set ``page``/``page_end`` from where each node's text sits in the merged document.

    Parsers report offsets inconsistently (hierarchy levels are relative to their parent),
    so the offset is checked against the text and found by search when it does not match.
    With sentence windows the LLM reads the whole window, so the pages span the window: the
    ``window`` sentences before and after each sentence.
    """
    spans = _spans(nodes, pdf)
    for i, (node, (start, end)) in enumerate(zip(nodes, spans)):
        if window is not None:
            start = min(s for s, _ in spans[max(i - window, 0):i + 1])
            end = max(e for _, e in spans[i:i + window + 1])
        node.metadata["page"] = pdf.page_at(start)
        node.metadata["page_end"] = pdf.page_at(end)
        node.metadata["start_char"] = start
        node.excluded_embed_metadata_keys.extend(k for k in PAGE_KEYS if k not in node.excluded_embed_metadata_keys)


def _attach_sections(nodes: list[BaseNode], pdf: PdfText) -> None:
    """The document's title and the heading path a node starts under, for its embedding and BM25
    text (rag.ingest.sections); the LLM reads no metadata."""
    sections = Sections(pdf.text)
    for node in nodes:
        start = node.metadata.pop("start_char")
        for key, value in (("title", sections.title), ("section", sections.at(start))):
            if value:
                node.metadata[key] = value
        # The synthesizer numbers the chunks and we map numbers to file/page ourselves; a
        # small model copies metadata lines into its answer instead of using them.
        node.excluded_llm_metadata_keys = list(node.metadata)


def _spans(nodes: list[BaseNode], pdf: PdfText) -> list[tuple[int, int]]:
    """(start, end) offset of each node's own text in the merged document."""
    spans, cursor = [], 0
    for node in nodes:
        text = node.get_content(metadata_mode="none") if node.metadata.get("original_text") is None \
            else node.metadata["original_text"]
        probe = text[:80]
        start = node.start_char_idx
        if start is None or pdf.text[start:start + len(probe)] != probe:
            found = pdf.text.find(probe, cursor)
            if found < 0:
                found = pdf.text.find(probe)
            start = found if found >= 0 else cursor
        cursor = start
        spans.append((start, start + max(len(text) - 1, 0)))
    return spans
