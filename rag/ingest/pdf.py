"""Stage 1: find PDFs, check them, and read each into one text with its page mapping.

Passwords: a PDF that needs a password to open is read when the password is given, either as
``read_pdf(..., password=...)`` or in a text file next to it: ``<file>.pdf.password`` for that
file, or ``.pdf-password`` for every PDF in that folder (first line; keep such files private).
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import stat
import warnings
import zlib
from pathlib import Path

from rag.errors import InputError, UnreadablePdfError
from rag.ingest.tables import TableText, scan_page
from rag.types import PdfText, Skipped

PAGE_SEPARATOR = "\n\n"
PASSWORD_SUFFIX = ".password"  # report.pdf.password holds the password of report.pdf
FOLDER_PASSWORD = ".pdf-password"  # the password of every PDF in its folder
DECRYPT_HINT = ("put the password in {sidecar} (or {folder} for the whole folder), "
                "or decrypt it first: `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`")

log = logging.getLogger(__name__)


def find_pdfs(path: str | Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The PDFs under ``path`` as (file, display name) pairs, and the other files skipped.

    Links to files and folders are followed; broken links, link loops and special files
    (FIFOs, devices) are skipped with a reason. Hidden files and folders are left out.
    Raises InputError when the path does not exist or holds no PDF at all.
    """
    root = Path(path).expanduser()
    if root.is_symlink() and not root.exists():
        raise InputError(f"{root}: {_broken_link(root)}. Give a PDF file or a folder of PDFs.")
    if not root.exists():
        raise InputError(f"{root}: no such file or directory. Give a PDF file or a folder of PDFs.")
    if not root.is_dir():
        if root.suffix.lower() != ".pdf":
            raise InputError(f"{root}: not a PDF (expected a .pdf file or a folder of PDFs).")
        if not root.is_file():
            raise InputError(f"{root}: not a regular file (a FIFO, socket or device). Give a PDF file.")
        return [(root, display_name(root.name))], []
    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    seen = {_identity(root): ""}  # folders walked, by (device, inode): a folder is walked once
    links: list[tuple[Path, str]] = []  # links to folders, followed after the real folders
    _walk(root, root, seen, links, found, skipped)
    while links:
        link, rel = links.pop(0)
        identity = _identity(link)
        if identity in seen:
            inside = os.path.realpath(link.parent) + os.sep
            target = os.path.realpath(link) + os.sep
            why = ("a link to a folder above it (a loop)" if inside.startswith(target)
                   else f"a link to a folder that is already included as {seen[identity] or '.'}/")
            skipped.append(Skipped(rel + "/", why + ", not followed", failed=False))
            continue
        seen[identity] = rel
        _walk(root, link, seen, links, found, skipped)
    if not found and not any(s.failed for s in skipped):
        raise InputError(f"{root}: no PDF files found in this folder. Put .pdf files there or give another path.")
    return sorted(found, key=lambda f: f[1]), sorted(skipped, key=lambda s: s.path)


def _walk(root: Path, folder: Path, seen: dict, links: list, found: list, skipped: list) -> None:
    """Collect the PDFs under ``folder``; links to folders go to ``links``, to be walked later."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skipped.append(Skipped(display_name(folder.relative_to(root).as_posix()) + "/",
                               f"cannot open this folder ({os.strerror(exc.errno or 0) or 'error'}); skipped"))
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower().endswith(".pdf" + PASSWORD_SUFFIX):
            continue  # hidden files (.DS_Store, .git) are not documents; password files are ours to read
        file = Path(entry.path)
        rel = display_name(file.relative_to(root).as_posix())
        is_pdf = entry.name.lower().endswith(".pdf")
        try:
            info = os.stat(file)  # follows links
        except OSError:
            skipped.append(Skipped(rel, _broken_link(file) + ("" if is_pdf else ", ignored"), failed=is_pdf))
            continue
        if stat.S_ISDIR(info.st_mode):
            if entry.is_symlink():
                links.append((file, rel))
            elif (info.st_dev, info.st_ino) not in seen:  # (a bind mount can show a folder twice)
                seen[(info.st_dev, info.st_ino)] = rel
                _walk(root, file, seen, links, found, skipped)
        elif not stat.S_ISREG(info.st_mode):
            skipped.append(Skipped(rel, "not a regular file (a FIFO, socket or device)" + ("" if is_pdf else ", ignored"),
                                   failed=is_pdf))
        elif is_pdf:
            found.append((file, rel))
        else:
            skipped.append(Skipped(rel, "not a PDF, ignored", failed=False))


def _identity(folder: Path) -> tuple[int, int]:
    info = os.stat(folder)
    return info.st_dev, info.st_ino


def _broken_link(link: Path) -> str:
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop (the link points, in the end, back to itself); fix or remove the link"
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    return f"a broken symbolic link (it points to {display_name(target)}, which does not exist); fix or remove the link"


def display_name(name: str) -> str:
    """``name`` safe to print on one line and to store as UTF-8: undecodable bytes become ``\\xNN``,
    control characters (a newline in a file name) become escapes."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in text)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _unreadable_file(path, exc) from None
    return digest.hexdigest()


def read_pdf(path: Path, name: str, password: str | None = None) -> PdfText:
    """Read a PDF with pypdf, one page at a time, into one text with its page mapping; the rows of
    ruled tables become one line each, with their column headers (see ``rag.ingest.tables``).

    The file is read into memory once and the hash is taken of those bytes, so the text and
    its hash always belong to the same version of the file, even if it changes meanwhile.
    ``password`` opens a PDF that needs one; without it, the password files next to the PDF
    are used (see the module's docstring). Raises UnreadablePdfError with the reason and a
    remedy for encrypted, corrupt, truncated, empty, page-less and image-only files.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _unreadable_file(Path(path), exc) from None
    with _pypdf_limits(), _QuietPypdf(name):
        reader = _open_pdf(data, name, Path(path), password)
        if reader.is_encrypted and password is None:
            password = _password_file(Path(path))[0]
        tables = TableText(data, name, password)
        texts = []
        try:
            for number, page in enumerate(reader.pages, start=1):
                try:
                    scan = scan_page(page)
                except _pdf_errors() as exc:
                    log.debug("%s: page %d: %r", name, number, exc)
                    raise UnreadablePdfError(
                        name, f"page {number} of {len(reader.pages)} cannot be read: the PDF is damaged. "
                        "Repair it (for example `qpdf in.pdf repaired.pdf`) or export it again."
                    ) from None
                texts.append(_clean(tables.page_text(number, scan)))
        finally:
            tables.close()
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


def _unreadable_file(path: Path, exc: OSError) -> UnreadablePdfError:
    if isinstance(exc, FileNotFoundError):
        return UnreadablePdfError(path.name, "the file disappeared while it was being ingested. Run ingest again.")
    if isinstance(exc, PermissionError):
        return UnreadablePdfError(path.name, "permission denied: make the file readable (chmod +r) and run ingest again.")
    if isinstance(exc, IsADirectoryError):
        return UnreadablePdfError(path.name, "a folder, not a file.")
    return UnreadablePdfError(path.name, f"the file cannot be read ({os.strerror(exc.errno or 0) or 'I/O error'}).")


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
    return (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError, OSError, zlib.error,
            RecursionError, AssertionError)


def _open_pdf(data: bytes, name: str, path: Path, password: str | None):
    """A PdfReader with every page reachable; the failure's cause otherwise, found from the bytes."""
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, WrongPasswordError

    if not data:
        raise UnreadablePdfError(name, "the file is empty (0 bytes). Replace it with the real PDF.")
    if b"%PDF-" not in data[:1024]:
        raise UnreadablePdfError(name, "not a PDF file (no PDF header), though it is named .pdf. Check the file.")
    if b"%%EOF" not in data[-2048:]:
        raise UnreadablePdfError(name, "the PDF is truncated: it has no end-of-file marker, so it was cut off (an "
                                       "interrupted download or copy) or is corrupt. Get the whole file again.")
    source = "given"
    if password is None:
        password, source = _password_file(path)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # "": PDFs with only an owner password
            if password is None:
                raise UnreadablePdfError(name, "the PDF is encrypted with a password: "
                                         + DECRYPT_HINT.format(sidecar=f"{path.name}{PASSWORD_SUFFIX}",
                                                               folder=FOLDER_PASSWORD) + ".")
            if not reader.decrypt(password):
                raise UnreadablePdfError(name, f"the password {source} does not open this PDF. "
                                               "Put the right one there, or decrypt the file first.")
        count = len(reader.pages)
    except DependencyError:
        raise UnreadablePdfError(name, "the PDF is encrypted with AES, which needs the package cryptography: "
                                       "pip install 'pypdf[crypto]'.") from None
    except (FileNotDecryptedError, WrongPasswordError):
        raise UnreadablePdfError(name, "the PDF is encrypted with a password: "
                                 + DECRYPT_HINT.format(sidecar=f"{path.name}{PASSWORD_SUFFIX}",
                                                       folder=FOLDER_PASSWORD) + ".") from None
    except NotImplementedError:
        raise UnreadablePdfError(name, "the PDF uses an encryption that cannot be read here (for example "
                                       "certificate security). Save an unencrypted copy and ingest that.") from None
    except _pdf_errors() as exc:
        log.debug("%s: %r", name, exc)
        raise UnreadablePdfError(name, "the PDF is corrupt: its structure cannot be parsed. Repair it "
                                       "(for example `qpdf in.pdf repaired.pdf`) or export it again.") from None
    if count == 0:
        raise UnreadablePdfError(name, "the PDF has no pages. Replace it with the real document.")
    return reader


def _password_file(pdf: Path) -> tuple[str | None, str]:
    """The password from ``<pdf>.password`` or the folder's ``.pdf-password``, and where it came from."""
    for candidate in (pdf.with_name(pdf.name + PASSWORD_SUFFIX), pdf.with_name(FOLDER_PASSWORD)):
        try:
            lines = candidate.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        return (lines[0] if lines else ""), f"in {display_name(candidate.name)}"
    return None, ""


class _QuietPypdf:
    """pypdf logs repairs ("Ignoring wrong pointing object ...") and warns: not for the user's terminal.
    Its messages go to this module's logger at DEBUG level, where --verbose / a log file can find them."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.logger = logging.getLogger("pypdf")
        self.saved = self.logger.level, self.logger.propagate, list(self.logger.handlers)
        self.logger.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.CRITICAL + 1)
        self.logger.propagate = False
        self.logger.handlers = [_Forward(self.name)]
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        level, self.logger.propagate, self.logger.handlers = self.saved
        self.logger.setLevel(level)


class _Forward(logging.Handler):
    def __init__(self, name: str):
        super().__init__()
        self.pdf_name = name

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("%s: pypdf: %s", self.pdf_name, record.getMessage())


def _clean(text: str) -> str:
    # pypdf keeps NUL bytes and trailing spaces from some producers; they only add noise.
    return "\n".join(line.rstrip() for line in text.replace("\x00", "").splitlines()).strip()
