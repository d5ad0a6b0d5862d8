"""Tables at ingest: each row of a ruled table becomes one line with its column headers, at the table's
place in the page text, while the prose around it stays pypdf's text, line for line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from pathlib import Path

import pytest
from pdfs import make_encrypted_pdf, make_pdf

from rag.errors import IndexMissingError
from rag.ingest import tables
from rag.ingest.pdf import _clean, _pypdf_limits, read_pdf
from rag.types import PdfText

ROOT = Path(__file__).resolve().parents[2]
SEC_PDFS = ROOT.parent / "shared" / "datasets" / "sec10q" / "pdfs"
HEADERS = ["Part", "Material", "Stock"]


# ---------------------------------------------------------------- helpers

def _pages(pdf: PdfText) -> list[str]:
    ends = pdf.page_starts[1:] + [len(pdf.text)]
    return [pdf.text[s:e].strip() for s, e in zip(pdf.page_starts, ends)]


def _plain(path: Path) -> list[str]:
    """What read_pdf returned before tables: pypdf's text of each page."""
    import pypdf

    with _pypdf_limits():
        return [_clean(p.extract_text() or "") for p in pypdf.PdfReader(path).pages]


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if " | " in line]


def _page_of(pdf: PdfText, needle: str) -> int:
    offset = pdf.text.index(needle)
    return pdf.page_at(offset)


def _assert_prose_kept(plain: str, new: str) -> None:
    """The lines of ``new`` that are not row lines are pypdf's lines, in order, none lost but table
    cells; and every word of a removed line is in the page's row lines."""
    rows = _rows(new)
    prose = [line for line in new.splitlines() if line not in rows]
    old = plain.splitlines()
    kept, i = [], 0
    for line in prose:
        while i < len(old) and old[i] != line:
            i += 1
        assert i < len(old), f"prose line changed or out of order: {line!r}"
        kept.append(i)
        i += 1
    removed = [line for j, line in enumerate(old) if j not in set(kept)]
    words = set(re.findall(r"\w+", " ".join(rows)))
    for line in removed:
        assert set(re.findall(r"\w+", line)) <= words, f"lost text: {line!r}"
    lost = Counter("".join(plain.split())) - Counter("".join(new.split()))
    assert not lost, f"characters of pypdf's text missing: {dict(lost)}"


def _doc(path: Path, flow: list, **kwargs) -> Path:
    """A PDF from ``flow``: strings are paragraphs, ("table", rows, options) are grid tables with a
    bold header row, "break" is a page break."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    story = []
    for item in flow:
        if item == "break":
            story.append(PageBreak())
        elif isinstance(item, str):
            story.append(Paragraph(item, styles["BodyText"]))
        else:
            _, rows, options = item
            data = [[Paragraph(c, styles["BodyText"]) if len(c) > 30 else c for c in row] for row in rows]
            table = Table(data, colWidths=options.get("widths", [120, 150, 150]), repeatRows=options.get("repeat", 0))
            style = [("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
            if options.get("header", True):
                style.append(("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"))
            table.setStyle(TableStyle(style))
            story += [table, Spacer(1, 8)]
    path.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(str(path), pagesize=A4, invariant=1, **kwargs).build(story)
    return path


def _parts(count: int, start: int = 1) -> list[list[str]]:
    """Text-only rows (no amounts), so that only the continuation rule tells them from a header row."""
    materials = ["Steel bracket", "Brass fitting", "Nylon washer"]
    return [[f"Part A{n:02d}", materials[n % 3], "In stock" if n % 2 else "On order"] for n in range(start, start + count)]


# ---------------------------------------------------------------- the sample handbook

@pytest.fixture(scope="module")
def handbook() -> PdfText:
    path = ROOT / "data" / "northwind_employee_handbook.pdf"
    return read_pdf(path, path.name)


def test_handbook_leave_rows_carry_their_headers_on_one_line(handbook):
    sick = [line for line in handbook.text.splitlines() if "Sick leave" in line]
    assert sick == ["Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes | Notes: A medical "
                    "certificate is needed from the 4th consecutive day of absence."]
    assert _page_of(handbook, sick[0]) == 2
    annual = next(line for line in handbook.text.splitlines() if line.startswith("Leave type: Annual leave"))
    assert "25 working days" in annual and "10 working days" not in annual


def test_handbook_expense_tables_on_page_3(handbook):
    page = _pages(handbook)[2]
    assert ("Category: Hotel (maximum per night) | Domestic travel: $220 | International travel: $310."
            in page.splitlines())
    assert "Claim amount: $500.01 to $5,000 | Approver: Department director." in page.splitlines()
    # the rows sit where the table was: between the text before and after it
    lines = page.splitlines()
    first = lines.index("Claim amount: Up to $500 | Approver: Line manager.")
    assert lines[first - 1] == "Every claim is approved by one person, chosen by the total amount of the claim:"
    assert lines[first + 3] == "4.5 Corporate cards"


@pytest.mark.parametrize("name", ["northwind_employee_handbook.pdf", "aquapure_3000_operations_guide.pdf",
                                  "csdl_data_management_policy.pdf"])
def test_sample_prose_is_pypdf_text_unchanged(name):
    path = ROOT / "data" / name
    pdf = read_pdf(path, name)
    plain = _plain(path)
    assert pdf.pages == len(plain)
    assert _rows(pdf.text), "every sample has tables"
    for before, after in zip(plain, _pages(pdf)):
        _assert_prose_kept(before, after)


def test_no_row_is_cut_by_any_retriever_kinds_node_parser(handbook):
    from rag import Config
    from rag.ingest.parse import parse
    from rag.retrieval.spec import RetrieverSpec

    rows = _rows(handbook.text)
    assert len(rows) >= 20
    for kind in ("basic", "sentence_window", "auto_merging"):
        parsed = parse(RetrieverSpec.parse(kind, Config()).parser_spec, handbook)
        texts = [n.metadata.get("original_text") or n.get_content(metadata_mode="none")
                 for n, embedded in zip(parsed.nodes, parsed.embed) if embedded]
        cut = [r for r in rows if not any(r in t for t in texts)]
        assert not cut, (kind, cut[:2])
        if kind == "sentence_window":  # one sentence per row: a row is matched on its own
            assert sum(1 for t in texts if t.strip() in rows) >= len(rows) - 5


# ---------------------------------------------------------------- generated tables

def test_empty_cells_are_left_out_and_wrapped_cells_joined(tmp_path):
    long = "Replace the seal every six months or after any leak, whichever comes first, and log it"
    path = _doc(tmp_path / "t.pdf", [
        "Spare parts are listed below.",
        ("table", [HEADERS, ["Part A01", "", "In stock"], ["Part A02", long, "On order"]], {}),
        "Order parts through the service portal.",
    ])
    pdf = read_pdf(path, path.name)
    lines = pdf.text.splitlines()
    assert "Part: Part A01 | Stock: In stock." in lines
    assert f"Part: Part A02 | Material: {long} | Stock: On order." in lines
    assert lines.index("Spare parts are listed below.") + 1 == lines.index("Part: Part A01 | Stock: In stock.")
    assert lines[-1] == "Order parts through the service portal."


@pytest.mark.parametrize("repeat", [1, 0], ids=["header-repeated", "no-header-on-page-2"])
def test_table_across_a_page_break_keeps_headers_and_pages(tmp_path, repeat):
    rows = _parts(70)
    path = _doc(tmp_path / "long.pdf", ["Inventory of spare parts.", ("table", [HEADERS, *rows], {"repeat": repeat})])
    pdf = read_pdf(path, path.name)
    plain = _plain(path)
    assert pdf.pages == len(plain) >= 2
    lines = _rows(pdf.text)
    assert len(lines) == 70  # a repeated header row is a header, not a row
    for row, line in zip(rows, lines):
        assert line == f"Part: {row[0]} | Material: {row[1]} | Stock: {row[2]}."
        page = next(n for n, text in enumerate(plain, 1) if row[0] in text.splitlines())
        assert _page_of(pdf, line) == page, row[0]
    for before, after in zip(plain, _pages(pdf)):
        _assert_prose_kept(before, after)


def test_a_new_table_with_its_own_header_on_the_next_page_is_not_a_continuation(tmp_path):
    path = _doc(tmp_path / "two.pdf", [
        ("table", [HEADERS, *_parts(3)], {}), "break",
        ("table", [["Code", "Meaning", "Action"], ["E1", "Low pressure", "Check the pump"],
                   ["E2", "Sensor lost", "Check the cable"]], {}),
    ])
    pdf = read_pdf(path, path.name)
    page2 = _pages(pdf)[1].splitlines()
    assert page2 == ["Code: E1 | Meaning: Low pressure | Action: Check the pump.",
                     "Code: E2 | Meaning: Sensor lost | Action: Check the cable."]


def test_two_tables_on_one_page_each_with_its_headers_and_prose_between(tmp_path):
    path = _doc(tmp_path / "both.pdf", [
        "Parts first.",
        ("table", [HEADERS, *_parts(2)], {}),
        "Then the alarm codes, which the operator must know by heart.",
        ("table", [["Code", "Meaning"], ["E1", "Low pressure"], ["E2", "Sensor lost"]], {"widths": [100, 200]}),
        "End of the list.",
    ])
    pdf = read_pdf(path, path.name)
    assert pdf.pages == 1
    assert pdf.text.splitlines() == [
        "Parts first.",
        "Part: Part A01 | Material: Brass fitting | Stock: In stock.",
        "Part: Part A02 | Material: Nylon washer | Stock: On order.",
        "Then the alarm codes, which the operator must know by heart.",
        "Code: E1 | Meaning: Low pressure.",
        "Code: E2 | Meaning: Sensor lost.",
        "End of the list.",
    ]


def test_frames_rules_and_one_row_boxes_are_not_tables(tmp_path):
    """Prose with drawings around it stays exactly pypdf's text: a false table is worse than a missed one."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = tmp_path / "prose.pdf"
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    pdf.drawString(60, 790, "1. Safety notes")
    pdf.line(60, 785, 530, 785)  # a rule under the heading
    pdf.rect(55, 640, 480, 120)  # a framed note
    for i, line in enumerate(["Warning: disconnect the supply before you open the enclosure.",
                              "Only trained staff may replace the probes | see section 6.",
                              "Keep the manual next to the controller."]):
        pdf.drawString(60, 740 - 16 * i, line)
    pdf.rect(55, 560, 240, 30)  # a one-row box of two cells: signature and date
    pdf.rect(295, 560, 240, 30)
    pdf.drawString(60, 570, "Signed:")
    pdf.drawString(300, 570, "Date:")
    pdf.showPage()
    pdf.save()
    assert read_pdf(path, path.name).text == _plain(path)[0]


def test_a_dense_mesh_of_rules_is_not_searched(tmp_path, monkeypatch):
    """Graph paper would cost pdfplumber's finder tens of seconds per page; it is skipped."""
    import pdfplumber.table
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = tmp_path / "mesh.pdf"
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for x in range(40, 560, 4):
        pdf.line(x, 40, x, 800)
    for y in range(40, 800, 4):
        pdf.line(40, y, 560, y)
    pdf.drawString(60, 700, "Plot of the chlorine reading")
    pdf.drawString(300, 500, "Day 3")
    pdf.showPage()
    pdf.save()
    calls = []
    monkeypatch.setattr(pdfplumber.table, "TableFinder", lambda *a, **k: calls.append(a))
    assert read_pdf(path, path.name).text == _plain(path)[0]
    assert not calls


def test_a_failing_table_reader_leaves_that_page_with_pypdf_text(tmp_path, monkeypatch, caplog):
    path = _doc(tmp_path / "t.pdf", ["Before.", ("table", [HEADERS, *_parts(3)], {}), "After."])

    def broken(self, number, scan):
        raise RuntimeError("simulated pdfminer failure")

    monkeypatch.setattr(tables.TableText, "_tables", broken)
    with caplog.at_level(logging.DEBUG, logger="rag.ingest.tables"):
        pdf = read_pdf(path, path.name)
    assert pdf.text == _plain(path)[0]
    assert any("tables not read" in r.getMessage() and "simulated" in r.getMessage() for r in caplog.records)


def test_tables_of_a_password_protected_pdf(tmp_path):
    source = _doc(tmp_path / "plain.pdf", ["Parts.", ("table", [HEADERS, *_parts(2)], {})])
    locked = make_encrypted_pdf(tmp_path / "locked.pdf", source, password="s3cret")
    pdf = read_pdf(locked, locked.name, password="s3cret")
    assert "Part: Part A02 | Material: Nylon washer | Stock: On order." in pdf.text.splitlines()


def test_bad_input_keeps_its_one_line_errors(tmp_path):
    from rag.errors import UnreadablePdfError

    good = make_pdf(tmp_path / "good.pdf", ["Some text."])
    truncated = tmp_path / "cut.pdf"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(UnreadablePdfError, match="truncated"):
        read_pdf(truncated, truncated.name)


# ---------------------------------------------------------------- a stored index picks up the new text

def test_reingest_of_an_existing_store_reads_the_text_again(tmp_path):
    from rag import RAG, Config
    from rag.retrieval.nodes import ParserSpec
    from rag.ingest.sync import ensure_index

    docs = tmp_path / "docs"
    _doc(docs / "parts.pdf", ["Parts.", ("table", [HEADERS, *_parts(3)], {})])
    store = tmp_path / "store"
    app = RAG(Config(storage_dir=store))
    app.ingest(docs, progress=False)
    manifest_path = store / "manifest.json"
    cached = next((store / "cache" / "documents").glob("*.json"))
    fresh = json.loads(cached.read_text())
    assert "Part: Part A02 | Material: Nylon washer | Stock: On order." in fresh["text"]

    # As an older version left it: text without rows, no text format in the manifest.
    old_text = "Parts.\nPart\nMaterial\nStock\nPart A01\nBrass fitting\nIn stock"
    cached.write_text(json.dumps({**fresh, "text": old_text, "page_starts": [0]}))
    manifest = json.loads(manifest_path.read_text())
    del manifest["text_format"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMissingError, match="re-run `rag ingest PATH`"):
        ensure_index(app.store, ParserSpec.of("basic", {"chunk_size": 128, "chunk_overlap": 10}), progress=False)

    report = RAG(Config(storage_dir=store)).ingest(docs, progress=False)
    assert any("reading every PDF again" in m for m in report.messages)
    assert json.loads(cached.read_text())["text"] == fresh["text"]
    sources = RAG(Config(storage_dir=store)).retrieve("Which material is part A02?", "basic")
    assert any("Part: Part A02 | Material: Nylon washer" in s.text for s in sources)

    # With the current format the cached text is trusted: nothing is read again.
    cached.write_text(json.dumps({**fresh, "text": fresh["text"] + "\nmarker"}))
    again = RAG(Config(storage_dir=store)).ingest(docs, progress=False)
    assert again.up_to_date and json.loads(cached.read_text())["text"].endswith("marker")


@pytest.fixture(scope="module")
def pg():
    from pg_server import running_server

    yield from running_server(vector=True, password="tables-Secr3t")


def test_reingest_of_a_postgres_store_reads_the_text_again(tmp_path, pg):
    from rag import RAG, Config

    docs = tmp_path / "docs"
    _doc(docs / "parts.pdf", ["Parts.", ("table", [HEADERS, *_parts(3)], {})])
    config = Config(store=pg.create_database("tables"), storage_dir=tmp_path / "s")
    RAG(config, progress=False).ingest(docs, progress=False)
    connection = pg.connect("tables")  # as an older version left it
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("UPDATE rag_meta SET format = 1")
            cursor.execute("""UPDATE rag_files SET document = jsonb_set(document, '{text}', '"Parts. Part Material"')""")
    finally:
        connection.close()
    report = RAG(config, progress=False).ingest(docs, progress=False)
    assert any("reading every PDF again" in m for m in report.messages)
    [(text, stored_format)] = pg.query("tables", "SELECT document->>'text', (SELECT format FROM rag_meta) FROM rag_files")
    assert "Part: Part A02 | Material: Nylon washer | Stock: On order." in text and stored_format == 2
    assert RAG(config, progress=False).ingest(docs, progress=False).up_to_date


# ---------------------------------------------------------------- a real SEC 10-Q filing

def _filing_page(tmp_path: Path, name: str, page: int) -> Path:
    """One page of a filing, copied into a one-page PDF in ``tmp_path`` (the dataset stays where it is)."""
    import pypdf

    source = SEC_PDFS / name
    if not source.is_file():
        pytest.skip(f"{source} is missing")
    writer = pypdf.PdfWriter()
    with _pypdf_limits():
        writer.add_page(pypdf.PdfReader(source).pages[page - 1])
        buffer = io.BytesIO()
        writer.write(buffer)
    path = tmp_path / f"{page}-{name}"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.skipif(not SEC_PDFS.is_dir(), reason=f"the SEC 10-Q filings are not in {SEC_PDFS}")
def test_real_filing_statement_of_income(tmp_path):
    """NVIDIA's 10-Q for Q1 2023, page 3: its income statement, shaded and ruled, no full grid."""
    path = _filing_page(tmp_path, "2023 Q1 NVDA.pdf", 3)
    pdf = read_pdf(path, path.name)
    lines = pdf.text.splitlines()
    assert "Revenue | $ 7,192 | $ 8,288." in lines
    assert "Research and development | 1,875 | 1,618." in lines
    assert "Net income | $ 2,043 | $ 1,618." in lines
    assert len(_rows(pdf.text)) >= 18
    assert not any(re.search(r"\w: ", line) for line in _rows(pdf.text)), "its headers are above the ruled body"
    _assert_prose_kept(_plain(path)[0], pdf.text)
    assert lines.index("CONDENSED CONSOLIDATED STATEMENTS OF INCOME") < lines.index("Revenue | $ 7,192 | $ 8,288.")


@pytest.mark.skipif(not SEC_PDFS.is_dir(), reason=f"the SEC 10-Q filings are not in {SEC_PDFS}")
def test_real_filing_row_that_goes_on_outside_the_grid_stays_whole(tmp_path):
    """Apple's 10-Q for Q1 2023, page 14 of the filing: the first row's label lies outside the shaded
    cells of its values; that row stays pypdf's line instead of losing its label."""
    path = _filing_page(tmp_path, "2023 Q1 AAPL.pdf", 17)
    pdf = read_pdf(path, path.name)
    lines = pdf.text.splitlines()
    first = lines.index("Segment operating income $ 45,405 $ 49,657")
    assert lines[first + 1:first + 4] == ["Research and development expense | (7,709) | (6,306).",
                                          "Other corporate expenses, net | (1,680) | (1,863).",
                                          "Total operating income | $ 36,016 | $ 41,488."]
    _assert_prose_kept(_plain(path)[0], pdf.text)
