"""Stage 1: find PDFs, check them, and read each into one text with its page mapping."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import InputError


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why (the reason says what to do)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class PdfText:
    """One PDF's pages merged into one text, as the course does, with the page mapping kept.

    ``page_starts[i]`` is the offset in ``text`` where page ``i + 1`` begins.
    """

    name: str  # path relative to the ingested folder: what citations show
    sha256: str
    text: str
    page_starts: list[int] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    def page_at(self, offset: int) -> int:
        """1-based page number of the character at ``offset``."""
        import bisect

        return max(1, bisect.bisect_right(self.page_starts, max(offset, 0)))

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "text": self.text, "page_starts": self.page_starts}

    @classmethod
    def from_json(cls, data: dict) -> "PdfText":
        return cls(**data)


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
            skipped.append(Skipped(rel, "not a PDF, ignored"))
    if not found:
        raise InputError(f"{root}: no PDF files found in this folder. Put .pdf files there or give another path.")
    return found, skipped


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_pdf(path: Path, name: str, sha256: str | None = None) -> PdfText:
    """Read a PDF through LlamaIndex's PDFReader (pypdf), one page at a time.

    Raises InputError with the reason and a remedy for encrypted, corrupt, empty and
    image-only files.
    """
    with _pypdf_limits():
        _check_pdf(path, name)
        try:
            pages = _pdf_reader().load_data(path)
        except Exception as exc:  # pypdf raises many types for damaged files
            raise InputError(f"{name}: cannot read this PDF ({_short(exc)}). Re-export or repair it.") from None
    texts = [_clean(page.text) for page in pages]
    if not any(t.strip() for t in texts):
        raise InputError(
            f"{name}: no extractable text in {len(texts)} page(s): it looks scanned or image-only. "
            "Run OCR first (for example `ocrmypdf in.pdf out.pdf`)."
        )
    text, starts = "", []
    for page_text in texts:
        if text:
            text += PAGE_SEPARATOR
        starts.append(len(text))
        text += page_text
    return PdfText(name=name, sha256=sha256 or file_sha256(path), text=text, page_starts=starts)


def _pypdf_limits():
    """pypdf's anti-DoS limits (100k array elements) reject real, large filings such as
    table-heavy SEC 10-Qs; raise them tenfold-plus while keeping a bound."""
    import contextlib

    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:  # older pypdf: no configurable limits
        return contextlib.nullcontext()
    return apply(array_maximum_element_count=5_000_000, dictionary_maximum_element_count=5_000_000)


def _pdf_reader():
    import logging

    # Importing llama_index.readers.file runs logging.basicConfig(level=INFO) (in its slides
    # module), which floods the user's console; undo that side effect.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from llama_index.readers.file import PDFReader

    root.handlers[:] = handlers
    root.setLevel(level)
    return PDFReader(return_full_document=False)


def _check_pdf(path: Path, name: str) -> None:
    import pypdf
    from pypdf.errors import PdfReadError

    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        raise InputError(f"{name}: the file is empty (0 bytes). Replace it with the real PDF.")
    if b"%PDF-" not in head:
        raise InputError(f"{name}: not a PDF file (no PDF header), though it is named .pdf. Check the file.")
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(
                f"{name}: the PDF is encrypted with a password. Decrypt it first "
                "(for example `qpdf --decrypt --password=... in.pdf out.pdf`)."
            )
        count = len(reader.pages)
    except InputError:
        raise
    except (PdfReadError, Exception) as exc:
        raise InputError(f"{name}: the PDF is corrupt or truncated ({_short(exc)}). Re-export or repair it.") from None
    if count == 0:
        raise InputError(f"{name}: the PDF has no pages. Replace it with the real document.")


def _clean(text: str) -> str:
    # pypdf keeps NUL bytes and trailing spaces from some producers; they only add noise.
    return "\n".join(line.rstrip() for line in text.replace("\x00", "").splitlines()).strip()


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:160]
