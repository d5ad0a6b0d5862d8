"""Stage 1: find PDFs, check them, and read each into one text with its page mapping."""

from __future__ import annotations

import hashlib
import io
import logging
import zlib
from pathlib import Path

from rag.errors import InputError, UnreadablePdfError
from rag.types import PdfText, Skipped

PAGE_SEPARATOR = "\n\n"


def find_pdfs(path: str | Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The PDFs under ``path`` as (file, display name) pairs, and the other files skipped.

    Raises InputError when the path does not exist or holds no PDF at all.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"{root}: no such file or directory. Give a PDF file or a folder of PDFs.")
    if root.is_file():
        if root.suffix.lower() != ".pdf":
            raise InputError(f"{root}: not a PDF (expected a .pdf file or a folder of PDFs).")
        return [(root, root.name)], []
    found, skipped = [], []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if any(part.startswith(".") for part in file.relative_to(root).parts):
            continue  # hidden files and folders (.DS_Store, .git) are not the user's documents
        if file.suffix.lower() == ".pdf":
            found.append((file, rel))
        else:
            skipped.append(Skipped(rel, "not a PDF, ignored", failed=False))
    if not found:
        raise InputError(f"{root}: no PDF files found in this folder. Put .pdf files there or give another path.")
    return found, skipped


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_pdf(path: Path, name: str) -> PdfText:
    """Read a PDF with pypdf, one page at a time, into one text with its page mapping.

    The file is read into memory once and the hash is taken of those bytes, so the text and
    its hash always belong to the same version of the file, even if it changes meanwhile.
    Raises UnreadablePdfError with the reason and a remedy for encrypted, corrupt, empty and
    image-only files.
    """
    data = Path(path).read_bytes()
    with _pypdf_limits(), _quiet_pypdf():
        reader = _open_pdf(data, name)
        try:
            texts = [_clean(page.extract_text() or "") for page in reader.pages]
        except _pdf_errors() as exc:
            raise UnreadablePdfError(name, f"cannot read this PDF ({_short(exc)}). Re-export or repair it.") from None
    if not any(t.strip() for t in texts):
        raise UnreadablePdfError(
            name, f"no extractable text in {len(texts)} page(s): it looks scanned or image-only. "
            "Run OCR first (for example `ocrmypdf in.pdf out.pdf`)."
        )
    text, starts = "", []
    for page_text in texts:
        if text:
            text += PAGE_SEPARATOR
        starts.append(len(text))
        text += page_text
    return PdfText(name=name, sha256=hashlib.sha256(data).hexdigest(), text=text, page_starts=starts)


def _pypdf_limits():
    """pypdf's anti-DoS limits (100k array elements) reject real, large filings such as
    table-heavy SEC 10-Qs; raise them tenfold-plus while keeping a bound."""
    import contextlib

    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:  # older pypdf: no configurable limits
        return contextlib.nullcontext()
    return apply(array_maximum_element_count=5_000_000, dictionary_maximum_element_count=5_000_000)


def _pdf_errors() -> tuple[type[BaseException], ...]:
    from pypdf.errors import PyPdfError

    # What pypdf raises on damaged files besides its own errors (found on truncated and
    # fuzzed PDFs); anything else is a bug of ours and is not reported as a corrupt PDF.
    return (PyPdfError, ValueError, KeyError, IndexError, TypeError, OSError, zlib.error, RecursionError)


def _open_pdf(data: bytes, name: str):
    import pypdf

    if not data:
        raise UnreadablePdfError(name, "the file is empty (0 bytes). Replace it with the real PDF.")
    if b"%PDF-" not in data[:1024]:
        raise UnreadablePdfError(name, "not a PDF file (no PDF header), though it is named .pdf. Check the file.")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadablePdfError(
                name, "the PDF is encrypted with a password. Decrypt it first "
                "(for example `qpdf --decrypt --password=... in.pdf out.pdf`)."
            )
        count = len(reader.pages)
    except _pdf_errors() as exc:
        raise UnreadablePdfError(name, f"the PDF is corrupt or truncated ({_short(exc)}). Re-export or repair it.") from None
    if count == 0:
        raise UnreadablePdfError(name, "the PDF has no pages. Replace it with the real document.")
    return reader


class _quiet_pypdf:
    """pypdf logs repairs ("Ignoring wrong pointing object ...") as warnings: not for the user's terminal."""

    def __enter__(self):
        self.logger = logging.getLogger("pypdf")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _clean(text: str) -> str:
    # pypdf keeps NUL bytes and trailing spaces from some producers; they only add noise.
    return "\n".join(line.rstrip() for line in text.replace("\x00", "").splitlines()).strip()


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:160]
