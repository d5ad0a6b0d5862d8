#!/usr/bin/env python3
"""Render the sample documents in data/src/*.md into PDFs in data/.

Supports the small Markdown subset used by the sample sources:
``#``/``##``/``###`` headings, paragraphs, ``-``/``*`` bullet lists,
``1.`` numbered lists, pipe tables, and inline ``**bold**``, ``*italic*``
and ```code```. Only the standard PDF fonts are used (no ligatures, clean
text extraction) and the output is byte-for-byte deterministic
(reportlab ``invariant=1``). Every page gets a footer with the document
title and "Page N of M".

Usage:
    .venv/bin/python scripts/render_sample_pdfs.py [--src DIR] [--out DIR]
    .venv/bin/python scripts/render_sample_pdfs.py --check [JSONL]

``--check`` does not render: it validates an eval file (default
eval_questions/sample.jsonl) against the PDFs in --out. For every
question it extracts the evidence pages with pypdf and verifies that each
key token of the reference answer (numbers, codes, proper nouns) occurs on
one of the evidence pages and that every evidence page contains at least
one of them. It also checks that the extracted text is clean: no ligature,
replacement or control characters, and every extracted word is a word of
the Markdown source in --src (so no glued or split words); and that
eval_questions.txt, if present next to the JSONL file, lists the same
questions in the same order.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT / "data" / "src"
DEFAULT_OUT = ROOT / "data"
DEFAULT_JSONL = ROOT / "eval_questions" / "sample.jsonl"

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"

# --------------------------------------------------------------------------
# Markdown parsing (deliberately small: just what the sample sources use)
# --------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # heading | para | bullets | numbers | table
    level: int = 0
    text: str = ""
    items: list = field(default_factory=list)  # list items or table rows


_HEADING = re.compile(r"^(#{1,3})\s+(.*\S)\s*$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def parse_markdown(text: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    lines = text.splitlines()

    def flush_para() -> None:
        if para:
            blocks.append(Block("para", text=" ".join(para)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush_para()
            i += 1
            continue
        m = _HEADING.match(line)
        if m:
            flush_para()
            blocks.append(Block("heading", level=len(m.group(1)), text=m.group(2)))
            i += 1
            continue
        if line.lstrip().startswith("|"):
            flush_para()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                if not _TABLE_SEP.match(lines[i]):
                    rows.append(_split_row(lines[i]))
                i += 1
            width = max(len(r) for r in rows)
            rows = [r + [""] * (width - len(r)) for r in rows]
            blocks.append(Block("table", items=rows))
            continue
        for kind, pattern in (("bullets", _BULLET), ("numbers", _NUMBER)):
            if pattern.match(line):
                flush_para()
                items: list[str] = []
                while i < len(lines) and lines[i].strip():
                    m2 = pattern.match(lines[i])
                    if m2:
                        items.append(m2.group(1).strip())
                    elif lines[i].startswith((" ", "\t")) and items:
                        items[-1] += " " + lines[i].strip()  # continuation line
                    else:
                        break
                    i += 1
                blocks.append(Block(kind, items=items))
                break
        else:
            para.append(line.strip())
            i += 1
    flush_para()
    return blocks


def inline(text: str) -> str:
    """Markdown inline markup -> reportlab paragraph markup."""
    out = escape(text)
    out = re.sub(r"`([^`]+)`", r'<font name="Courier">\1</font>', out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", out)
    return out


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

STYLES = {
    "h1": ParagraphStyle("h1", fontName=FONT_BOLD, fontSize=17, leading=21,
                         spaceBefore=0, spaceAfter=8, keepWithNext=1),
    "h2": ParagraphStyle("h2", fontName=FONT_BOLD, fontSize=13, leading=16,
                         spaceBefore=12, spaceAfter=5, keepWithNext=1),
    "h3": ParagraphStyle("h3", fontName=FONT_BOLD, fontSize=11, leading=14,
                         spaceBefore=8, spaceAfter=3, keepWithNext=1),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=10, leading=14,
                           alignment=TA_LEFT, spaceAfter=6),
    "item": ParagraphStyle("item", fontName=FONT, fontSize=10, leading=14,
                           alignment=TA_LEFT),
    "cell": ParagraphStyle("cell", fontName=FONT, fontSize=9, leading=11.5,
                           alignment=TA_LEFT),
    "head": ParagraphStyle("head", fontName=FONT_BOLD, fontSize=9, leading=11.5,
                           alignment=TA_LEFT),
}


LIST_INDENT = 16


def _column_widths(rows: list[list[str]], total: float) -> list[float]:
    """Fit columns to the page width without ever breaking a word.

    Each column gets at least the width of its longest word; the remaining
    space is shared in proportion to how much wider each column would like
    to be (its longest cell on one line).
    """
    pad = 8 + 1  # left + right padding, plus a little slack
    ncols = len(rows[0])
    minimum, natural = [], []
    for c in range(ncols):
        words, cells = [], []
        for r, row in enumerate(rows):
            font = FONT_BOLD if r == 0 else FONT
            text = _plain(row[c])
            cells.append(stringWidth(text, font, 9))
            words += [stringWidth(w, font, 9) for w in text.split()] or [0]
        minimum.append(max(words) + pad)
        natural.append(max(max(cells) + pad, minimum[-1]))
    if sum(natural) <= total:
        return [total * n / sum(natural) for n in natural]
    spare = total - sum(minimum)
    if spare <= 0:  # cannot avoid breaking words; share proportionally
        return [total * m / sum(minimum) for m in minimum]
    want = [n - m for n, m in zip(natural, minimum)]
    return [m + spare * w / sum(want) for m, w in zip(minimum, want)]


def build_flowables(blocks: list[Block], width: float) -> list:
    story: list = []
    for b in blocks:
        if b.kind == "heading":
            story.append(Paragraph(inline(b.text), STYLES[f"h{b.level}"]))
        elif b.kind == "para":
            story.append(Paragraph(inline(b.text), STYLES["body"]))
        elif b.kind in ("bullets", "numbers"):
            # The marker is part of the paragraph text (hanging indent) so that
            # text extraction yields "- item" on one line, not a lone marker.
            for n, t in enumerate(b.items, 1):
                marker = "- " if b.kind == "bullets" else f"{n}. "
                style = ParagraphStyle(
                    "li", parent=STYLES["item"], leftIndent=LIST_INDENT,
                    firstLineIndent=-stringWidth(marker, FONT, STYLES["item"].fontSize),
                    spaceAfter=2)
                story.append(Paragraph(escape(marker) + inline(t), style))
            story.append(Spacer(1, 6))
        elif b.kind == "table":
            rows = b.items
            data = [[Paragraph(inline(c), STYLES["head" if r == 0 else "cell"])
                     for c in row] for r, row in enumerate(rows)]
            table = Table(data, colWidths=_column_widths(rows, width), repeatRows=1,
                          hAlign="LEFT")
            table.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#808080")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E4E4E4")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LEFTPADDING", (0, 0), (-1, -1), 4),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ]))
            story.append(Spacer(1, 2))
            story.append(table)
            story.append(Spacer(1, 8))
    return story


def _plain(text: str) -> str:
    return re.sub(r"[*`]", "", text)


def render(md_path: Path, pdf_path: Path) -> int:
    """Render one Markdown file; returns the number of pages."""
    blocks = parse_markdown(md_path.read_text(encoding="utf-8"))
    title = next((_plain(b.text) for b in blocks
                  if b.kind == "heading" and b.level == 1), md_path.stem)

    def make(total_pages: int | None, target) -> int:
        doc = BaseDocTemplate(
            target, pagesize=A4,
            leftMargin=22 * mm, rightMargin=22 * mm,
            topMargin=20 * mm, bottomMargin=22 * mm,
            title=title, author="Sample data (fictional)",
            subject=f"Rendered from data/src/{md_path.name}",
            creator="scripts/render_sample_pdfs.py",
            invariant=1,
        )
        pages = {"n": 0}

        def footer(canvas, doc_):
            # Drawn at the end of each page so that extracted text reads
            # body first, footer last.
            pages["n"] = doc_.page
            canvas.saveState()
            canvas.setFont(FONT, 8)
            canvas.setFillColor(colors.HexColor("#555555"))
            y = 12 * mm
            canvas.drawString(doc_.leftMargin, y, title)
            label = f"Page {doc_.page}" + (f" of {total_pages}" if total_pages else "")
            canvas.drawRightString(doc_.pagesize[0] - doc_.rightMargin, y, label)
            canvas.restoreState()

        frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPageEnd=footer)])
        doc.build(build_flowables(blocks, doc.width))
        return pages["n"]

    total = make(None, io.BytesIO())  # first pass: count pages
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if make(total, buf) != total:
        raise RuntimeError(f"page count changed between passes for {md_path}")
    pdf_path.write_bytes(buf.getvalue())
    return total


# --------------------------------------------------------------------------
# Checking an eval file against the rendered PDFs
# --------------------------------------------------------------------------

_BAD_CHARS = re.compile("[\ufb00-\ufb06\ufffd\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_NUM_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*")
_CODE_TOKEN = re.compile(r"\b(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]+\b"
                         r"|\b[A-Z]{2,}\b")
_PROPER = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def answer_tokens(answer: str) -> list[str]:
    """Key tokens of a reference answer: codes, numbers and proper nouns.

    A number is kept together with the word that follows it in the answer
    ("2 weeks", "19200 baud"), so that a bare "2" elsewhere on a page does
    not count as evidence. Answers are written to reuse the document's
    wording for these pairs.
    """
    tokens: list[str] = []
    codes = _CODE_TOKEN.findall(answer)
    tokens += codes
    stripped = answer
    for c in codes:  # blank out codes, keeping offsets
        stripped = stripped.replace(c, " " * len(c))
    for m in _NUM_TOKEN.finditer(stripped):
        nxt = re.match(r"[\s,:;()\-]+([A-Za-z0-9]+)", stripped[m.end():])
        tokens.append(m.group() + (" " + nxt.group(1) if nxt else ""))
    tokens += _PROPER.findall(answer)
    seen, out = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _has(token: str, text: str) -> bool:
    """Whole-token match: "2" matches "2 weeks" but not "24" or "2.4".

    The parts of a multi-word token may be separated by any punctuation or
    whitespace on the page, and "N word" pairs match case-insensitively.
    """
    parts = [re.escape(p) for p in token.split(" ")]
    pattern = r"(?<![\w.,])" + r"[\W_]+".join(parts) + r"(?![\w]|[.,]\d)"
    flags = re.IGNORECASE if len(parts) > 1 else 0
    return re.search(pattern, text, flags) is not None


def check(jsonl: Path, pdf_dir: Path, src_dir: Path) -> bool:
    from pypdf import PdfReader

    ok = True
    cache: dict[str, list[str]] = {}

    def pages_of(name: str) -> list[str]:
        if name not in cache:
            reader = PdfReader(pdf_dir / name)
            cache[name] = [p.extract_text() or "" for p in reader.pages]
        return cache[name]

    for pdf in sorted(pdf_dir.glob("*.pdf")):
        texts = pages_of(pdf.name)
        bad = sorted({f"U+{ord(ch):04X}" for t in texts for ch in _BAD_CHARS.findall(t)})
        words = sum(len(t.split()) for t in texts)
        status = "OK" if not bad else "FAIL bad characters " + ", ".join(bad)
        ok &= not bad
        md = src_dir / (pdf.stem + ".md")
        if md.exists():
            # Every extracted word must be a word of the source (or footer):
            # catches glued words ("thecompany") and words split in two.
            known = set(re.findall(r"[A-Za-z]+", md.read_text(encoding="utf-8")))
            known |= {"Page", "of"}
            odd = sorted({w for t in texts for w in re.findall(r"[A-Za-z]+", t)} - known)
            if odd:
                ok = False
                status += "; FAIL words not in source: " + ", ".join(odd[:20])
            else:
                status += "; all words match the source"
        print(f"{pdf.name}: {len(texts)} pages, {words} words, "
              f"{pdf.stat().st_size // 1024} KB, text {status}")

    questions = []
    for lineno, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        q = json.loads(line)
        questions.append(q["question"])
        missing_keys = {"question", "reference_answer", "evidence"} - q.keys()
        if missing_keys:
            print(f"[{lineno}] FAIL missing keys {sorted(missing_keys)}")
            ok = False
            continue
        tokens = answer_tokens(q["reference_answer"])
        problems = []
        page_texts = []
        for ev in q["evidence"]:
            name, page = ev["file"], ev["page"]
            if not (pdf_dir / name).exists():
                problems.append(f"{name} not found")
                continue
            texts = pages_of(name)
            if not 1 <= page <= len(texts):
                problems.append(f"{name} has no page {page}")
                continue
            text = _norm(texts[page - 1])
            page_texts.append(text)
            if not any(_has(t, text) for t in tokens):
                problems.append(f"{name} p.{page} contains none of the answer tokens")
        for t in tokens:
            if page_texts and not any(_has(t, text) for text in page_texts):
                problems.append(f"token {t!r} not on any evidence page")
        if not tokens:
            problems.append("no checkable tokens in reference_answer")
        where = ", ".join(f"{e['file']} p.{e['page']}" for e in q["evidence"])
        if problems:
            ok = False
            print(f"[{lineno}] FAIL {where}: " + "; ".join(problems))
        else:
            print(f"[{lineno}] OK   {where}: tokens {tokens}")

    txt = jsonl.parent / "eval_questions.txt"
    if txt.exists():
        lines = [l.strip() for l in txt.read_text(encoding="utf-8").splitlines() if l.strip()]
        same = lines == questions
        ok &= same
        print(f"{txt.name}: {'OK, same ' + str(len(lines)) + ' questions' if same else 'FAIL, differs from ' + jsonl.name}")
    print("CHECK PASSED" if ok else "CHECK FAILED")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="directory with NAME.md sources")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for NAME.pdf outputs")
    ap.add_argument("--check", nargs="?", type=Path, const=DEFAULT_JSONL, default=None,
                    metavar="JSONL", help="validate an eval JSONL file against the PDFs in --out "
                    "(no rendering); default %(const)s")
    args = ap.parse_args(argv)

    if args.check is not None:
        return 0 if check(args.check, args.out, args.src) else 1

    sources = sorted(args.src.glob("*.md"))
    if not sources:
        print(f"no .md files in {args.src}", file=sys.stderr)
        return 1
    for md in sources:
        pdf = args.out / (md.stem + ".pdf")
        n = render(md, pdf)
        print(f"{md} -> {pdf} ({n} pages, {pdf.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
