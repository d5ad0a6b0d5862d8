"""A torture corpus of hostile and unusual inputs, generated (nothing binary is committed).

``build(folder)`` writes every case into ``folder`` and returns what ingest must say about each
entry: readable files with a phrase that only they contain, and the others with a fragment of
the reason ingest must give. Everything is small (a few KB per file) so a real ingest stays quick.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

from pdfs import make_image_only_pdf, make_pdf

ARABIC = "يحصل الموظفون على عشرة أيام إجازة مرضية مدفوعة"  # employees get ten days of paid sick leave
CHINESE = "员工每年享有十天带薪病假"
JAPANESE = "東京の事務所は九時に開きます"
FONT_PATHS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/TTF/DejaVuSans.ttf"]


@dataclass(frozen=True)
class Expect:
    """What ingest must report for one entry (``name`` as ingest shows it)."""

    name: str
    phrase: str | None = None  # readable: text only this file holds (its text must contain it)
    reason: str | None = None  # skipped: a fragment of the reason shown
    failed: bool = True  # skipped: a PDF that could not be read (True) or a file ignored on purpose

    @property
    def readable(self) -> bool:
        return self.phrase is not None


def text_pdf(path: Path, topic: str) -> Path:
    """A two-page PDF whose text names ``topic`` (a made-up word, so retrieval can find this file)."""
    return make_pdf(path, [f"The {topic} report. The {topic} office opens at nine on weekdays.",
                           f"Every {topic} visitor signs the {topic} register at the front desk."])


def pdf_bytes(topic: str, folder: Path) -> bytes:
    return text_pdf(folder / f".scratch-{topic}.pdf", topic).read_bytes()


def encrypted(source: bytes, algorithm: str, user_password: str = "", owner_password: str = "owner") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def no_pages_pdf() -> bytes:
    from pypdf import PdfWriter

    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()


def script_pdf(path: Path) -> Path:
    """Chinese and Japanese (reportlab's built-in CID fonts) and Arabic (a TrueType font, glyphs in
    visual order, right to left, as real PDF producers write it)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    font = next((p for p in FONT_PATHS if os.path.exists(p)), None)
    assert font, f"the Arabic case needs DejaVuSans.ttf (Debian package fonts-dejavu-core) at one of {FONT_PATHS}"
    for cid in ("STSong-Light", "HeiseiMin-W3"):
        pdfmetrics.registerFont(UnicodeCIDFont(cid))
    pdfmetrics.registerFont(TTFont("TortureDejaVu", font))
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setFont("STSong-Light", 14)
    pdf.drawString(50, 800, CHINESE + "。")
    pdf.setFont("HeiseiMin-W3", 14)
    pdf.drawString(50, 770, JAPANESE + "。")
    pdf.showPage()
    pdf.setFont("TortureDejaVu", 14)
    pdf.drawString(50, 800, ARABIC[::-1])
    pdf.showPage()
    pdf.save()
    return path


def build(folder: Path) -> list[Expect]:
    """Write the corpus into ``folder`` (created) and return the expectations, one per entry.

    A second folder next to it, ``<folder>-outside``, holds a PDF reached through a folder link.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f"{folder.name}-scratch"
    scratch.mkdir(exist_ok=True)
    expects: list[Expect] = []

    def readable(name: str, data: bytes | None = None, topic: str | None = None, shown: str | None = None) -> None:
        topic = topic or name.split(".")[0].replace(" ", "").replace("/", "")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else pdf_bytes(topic, scratch))
        expects.append(Expect(shown or name, phrase=f"{topic} office opens at nine"))

    def broken(name: str, data: bytes, reason: str) -> None:
        (folder / name).write_bytes(data)
        expects.append(Expect(name, reason=reason))

    plain = pdf_bytes("zanzibar", scratch)
    readable("plain.pdf", plain, topic="zanzibar")
    # Encrypted with an owner password only: every viewer opens them without asking.
    for algorithm, topic in [("AES-128", "aesone"), ("AES-256", "aestwo"), ("RC4-128", "rcfour"),
                             ("RC4-40", "rcforty")]:
        name = f"owner_only_{algorithm.lower().replace('-', '')}.pdf"
        readable(name, encrypted(pdf_bytes(topic, scratch), algorithm), topic=topic)
    # A user password: reported, unless the password is given next to it.
    broken("user_password.pdf", encrypted(pdf_bytes("lockedaway", scratch), "AES-256", user_password="s3cret"),
           "encrypted with a password: put the password in user_password.pdf.password")
    readable("with_password.pdf", encrypted(pdf_bytes("keyholder", scratch), "AES-256", user_password="open sesame"),
             topic="keyholder")
    (folder / "with_password.pdf.password").write_text("open sesame\n")
    broken("wrong_password.pdf", encrypted(pdf_bytes("wrongkey", scratch), "AES-128", user_password="right"),
           "the password in wrong_password.pdf.password does not open this PDF")
    (folder / "wrong_password.pdf.password").write_text("wrong\n")
    locked = folder / "locked folder"
    locked.mkdir()
    (locked / ".pdf-password").write_text("folderpw")
    readable("locked folder/inside.pdf", encrypted(pdf_bytes("foldkey", scratch), "RC4-128", user_password="folderpw"),
             topic="foldkey")

    # Damaged files and files that are no PDF.
    good = pdf_bytes("damaged", scratch)
    third = len(good) // 3
    noise = bytes(random.Random(14).randrange(256) for _ in range(third))
    broken("corrupt_middle.pdf", good[:third] + noise + good[2 * third:], "the PDF is corrupt")
    broken("truncated.pdf", good[: len(good) * 6 // 10], "the PDF is truncated")
    broken("not_a_pdf.pdf", b"Just some notes, saved with the wrong extension.\n", "not a PDF file (no PDF header)")
    broken("empty.pdf", b"", "the file is empty (0 bytes)")
    broken("no_pages.pdf", no_pages_pdf(), "the PDF has no pages")
    make_image_only_pdf(folder / "image_only.pdf")
    expects.append(Expect("image_only.pdf", reason="no extractable text in 1 page(s): it looks scanned"))

    # Links and odd entries.
    os.symlink("loop_b.pdf", folder / "loop_a.pdf")
    os.symlink("loop_a.pdf", folder / "loop_b.pdf")
    expects += [Expect("loop_a.pdf", reason="a symbolic link loop"), Expect("loop_b.pdf", reason="a symbolic link loop")]
    os.symlink("missing.pdf", folder / "dangling.pdf")
    expects.append(Expect("dangling.pdf", reason="a broken symbolic link (it points to missing.pdf"))
    os.symlink("nowhere.txt", folder / "dangling_notes.txt")
    expects.append(Expect("dangling_notes.txt", reason="a broken symbolic link", failed=False))
    os.symlink("plain.pdf", folder / "link_to_plain.pdf")
    expects.append(Expect("link_to_plain.pdf", phrase="zanzibar office opens at nine"))
    (folder / "sub").mkdir()
    os.symlink("..", folder / "sub" / "up")
    expects.append(Expect("sub/up/", reason="a link to a folder above it (a loop), not followed", failed=False))
    os.symlink("../folder.pdf", folder / "sub" / "again")
    expects.append(Expect("sub/again/", reason="a link to a folder that is already included as folder.pdf/",
                          failed=False))
    outside = folder.parent / f"{folder.name}-outside"
    outside.mkdir(exist_ok=True)
    text_pdf(outside / "outside.pdf", "faraway")
    os.symlink(outside, folder / "linked folder")
    expects.append(Expect("linked folder/outside.pdf", phrase="faraway office opens at nine"))
    os.mkfifo(folder / "fifo.pdf")
    expects.append(Expect("fifo.pdf", reason="not a regular file"))
    readable("folder.pdf/inner.pdf", topic="innermost")  # a folder named like a PDF is walked into
    (folder / "notes.txt").write_text("not a PDF\n")
    expects.append(Expect("notes.txt", reason="not a PDF, ignored", failed=False))
    (folder / ".hidden.pdf").write_bytes(b"")  # hidden: not the user's document, not listed

    # Names.
    readable("name with  spaces.pdf", topic="spacious")
    readable("unicodé 日本 файл.pdf", topic="unicorn")
    readable("new\nline.pdf", topic="newliner", shown="new\\nline.pdf")
    os.rename(pdf_bytes_to(scratch, "latinone"), os.fsencode(folder) + b"/latin1-\xe9.pdf")
    expects.append(Expect("latin1-\\xe9.pdf", phrase="latinone office opens at nine"))

    # The same bytes under two names; text in Chinese, Japanese and Arabic.
    duplicate = pdf_bytes("twinned", scratch)
    readable("duplicate_a.pdf", duplicate, topic="twinned")
    readable("duplicate_b.pdf", duplicate, topic="twinned")
    script_pdf(folder / "scripts.pdf")
    expects.append(Expect("scripts.pdf", phrase=CHINESE))
    return expects


def pdf_bytes_to(scratch: Path, topic: str) -> bytes:
    """The path (as bytes) of a fresh text PDF about ``topic`` in ``scratch``."""
    return os.fsencode(text_pdf(scratch / f"move-{topic}.pdf", topic))
