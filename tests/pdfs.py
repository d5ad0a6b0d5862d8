"""Build small real PDFs for tests (reportlab), including broken ones."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A text PDF with one string per page (lines wrap at ~90 characters)."""
    import textwrap

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for text in pages:
        y = 800
        for paragraph in text.split("\n"):
            for line in textwrap.wrap(paragraph, 90) or [""]:
                pdf.drawString(50, y, line)
                y -= 14
                if y < 50:
                    pdf.showPage()
                    y = 800
        pdf.showPage()
    pdf.save()
    return path


def make_image_only_pdf(path: Path) -> Path:
    """A PDF with drawings but no text layer, like a scan."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    pdf.rect(100, 100, 300, 500, fill=1)
    pdf.circle(300, 400, 80)
    pdf.showPage()
    pdf.save()
    return path


def make_encrypted_pdf(path: Path, source: Path, password: str = "s3cret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def make_cjk_pdf(path: Path, pages: list[str], font: str = "STSong-Light") -> Path:
    """A text PDF in Chinese (or Japanese with ``HeiseiMin-W3``): reportlab's built-in CID fonts,
    so the text layer is real Unicode a reader extracts. Lines wrap every 30 characters."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont(font))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for text in pages:
        pdf.setFont(font, 12)
        y = 800
        for paragraph in text.split("\n"):
            for start in range(0, max(len(paragraph), 1), 30):
                pdf.drawString(50, y, paragraph[start:start + 30])
                y -= 16
        pdf.showPage()
    pdf.save()
    return path
