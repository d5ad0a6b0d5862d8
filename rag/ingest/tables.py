"""Tables kept as tables: each row of a ruled table becomes one line that carries its column headers.

pypdf's ``extract_text()`` writes a table one cell per line, so a row's label, its values and the
column headers end up lines apart and a small model reads the neighbouring row's number. Here a row
reads ``Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes | Notes: ...``: cells in
order, each after its column header, empty cells left out, the lines of a wrapped cell joined with
spaces, and a period at the end so that sentence splitters keep one row per sentence (nothing in
LlamaIndex splits at ``" | "``).

How:

- The text is pypdf's, as before: its text pieces come with their positions, so the pieces that start
  in a table's cells are replaced by the table's row lines, at the place of the table's first piece.
  Prose outside tables is pypdf's text unchanged, and no character of it is lost.
- Tables are found by pdfplumber's table finder with the ``lines`` strategy of ``page.find_tables()``
  (ruling lines and the edges of filled or stroked rectangles), run on the segments that pypdf's path
  operators paint while it extracts the text: no second parse of pages without tables. It finds the
  grid tables of the sample PDFs and the shaded or ruled bodies of SEC 10-Q tables. The ``text``
  strategy (columns from text alignment) was tried on 10-Q pages and rejected: it cuts words in half
  ("Resea | rch and develop | ment") and makes tables of headings and prose. A grid counts only with
  text in two rows and two columns and two rows of two filled cells; frames, rules under headings and
  one-row boxes stay prose.
- Cell text comes from pdfium (``pypdfium2``, a dependency of pdfplumber): each character goes to the
  cell that holds its middle, as in pdfplumber's ``extract()``, at a tenth of the cost of reading the
  page with pdfminer, and with the same cells on the sample PDFs. A table is kept only when what pypdf
  wrote in its cells is its text; a row whose line goes on outside the grid (a label left of shaded
  cells) is left as pypdf's line.
- Headers: the first row when it reads like one (two or more cells, no amounts, years allowed; short
  cells unless set in bold). A table at the top of a page with the column layout of the last table of
  the previous page continues it: a repeated header row is recognised as the header, and without one
  the previous headers are used (unless the first row is in bold and the next is not: a new table).
  10-Q tables put their headers above the ruled body, outside the grid, so their rows carry no
  headers; the header lines stay where pypdf put them, just before the rows.
- Failures on a page leave that page with pypdf's text (logged at debug level). Rotated pages and
  pages with a dense mesh of rules (graph paper, hatching) are not searched.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

log = logging.getLogger(__name__)

MIN_RULE = 3.0  # points: a drawn segment shorter than this is not a ruling line (pdfplumber's edge_min_length)
MIN_RULES = 3  # vertical and horizontal rules (at distinct places) a page needs to be searched for tables
SNAP = 3.0  # points: rules closer than this are one (pdfplumber's snap tolerance)
MAX_GRID = 10_000  # distinct vertical x distinct horizontal rules: more is a drawing (10-Q pages: 2,226 at most)
FLAT = 0.05  # points: a segment this close to level (or plumb) is horizontal (vertical)
BOX_SLACK = 2.0  # points a text piece may start left or right of a cell and still be in it
SAME_LINE = 1.0  # points between two baselines of one line of text
SAME_TEXT = 0.9  # share of characters pypdf's pieces and the table's cells must have in common
SAME_EDGE = 3.0  # points two tables' column edges may differ by and still be one table
HEADER_CELL_MAX = 60  # characters: a longer first-row cell is data, not a header (unless in bold)
CURRENCY = {"$", "€", "£", "¥", "US$"}
AMOUNT = re.compile(r"[(\[]?[-+−–—]?\s*[$€£¥]?\s*[-+−]?\d[\d,.\s]*%?[)\]]?|[-−–—]+")
YEAR = re.compile(r"(?:19|20)\d\d")
SENTENCE_END = ".!?:;"
BOLD = re.compile(r"bold|black|heavy|semibold", re.I)
_PDFIUM = threading.Lock()  # pdfium is not thread-safe, across documents too


@dataclass
class Piece:
    """One piece of pypdf's page text and where it starts on the page (PDF user space)."""

    text: str
    x: float
    y: float


@dataclass
class PageScan:
    """pypdf's text of one page in pieces, and the straight segments its painted paths drew."""

    pieces: list[Piece] = field(default_factory=list)
    segments: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1
    rotated: bool = False

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)

    @cached_property
    def grids(self) -> list[Any]:
        """pdfplumber tables (geometry only; ``top`` = -y) whose cells hold text in two rows and two
        columns or more. The segments are checked first: most pages have too few rules for a table."""
        vertical = {round(x0 / SNAP) for x0, y0, x1, y1 in self.segments if abs(x1 - x0) < FLAT and abs(y1 - y0) >= MIN_RULE}
        horizontal = {round(y0 / SNAP) for x0, y0, x1, y1 in self.segments if abs(y1 - y0) < FLAT and abs(x1 - x0) >= MIN_RULE}
        if self.rotated or len(vertical) < MIN_RULES or len(horizontal) < MIN_RULES:
            return []
        if len(vertical) * len(horizontal) > MAX_GRID:  # graph paper, a hatched drawing: the finder would take seconds
            log.debug("a page with %d x %d rules: not searched for tables", len(vertical), len(horizontal))
            return []
        from pdfplumber.table import TableFinder

        anchors = [(p.x, -p.y) for p in self.pieces if p.text.strip()]

        def filled(groups) -> int:
            return sum(1 for g in groups if any(_inside(x, top, g.bbox) for x, top in anchors))

        return [t for t in TableFinder(_Edges(self.segments)).tables if filled(t.rows) >= 2 and filled(t.columns) >= 2]

    @property
    def ruled(self) -> bool:
        return bool(self.grids)


class _Edges:
    """What pdfplumber's TableFinder reads of a page, built from our segments (``top`` = -y)."""

    def __init__(self, segments: list[tuple[float, float, float, float]]):
        self.bbox = (0, 0, 0, 0)
        self.edges = []
        for x0, y0, x1, y1 in segments:
            if abs(x1 - x0) < FLAT:
                orientation = "v"
            elif abs(y1 - y0) < FLAT:
                orientation = "h"
            else:
                continue
            left, right, top, bottom = min(x0, x1), max(x0, x1), -max(y0, y1), -min(y0, y1)
            self.edges.append({"object_type": "line", "orientation": orientation, "x0": left, "x1": right,
                               "top": top, "bottom": bottom, "doctop": top, "width": right - left,
                               "height": bottom - top})


def scan_page(page: Any) -> PageScan:
    """pypdf's ``extract_text()`` of ``page``, kept in positioned pieces, with its painted segments.
    Raises whatever ``extract_text()`` raises."""
    scan = PageScan(rotated=bool(getattr(page, "rotation", 0) % 360))
    path = _Path(scan.segments)

    def on_text(text, cm, tm, font, size):
        scan.pieces.append(Piece(text, *_apply(tm, cm)))

    def on_operator(operator, operands, cm, tm):
        try:
            path.operator(operator, operands, cm)
        except (TypeError, ValueError, IndexError):
            path.pending.clear()  # malformed operands draw nothing we can use

    text = page.extract_text(visitor_text=on_text, visitor_operand_before=on_operator)
    if scan.text != text:  # (never seen) pieces that do not add up: keep the text, find no tables
        scan.pieces, scan.segments = [Piece(text, 0.0, 0.0)], []
    return scan


def _apply(tm: list[float], cm: list[float]) -> tuple[float, float]:
    """The origin of text matrix ``tm`` under ``cm``, in user space."""
    return tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]


class _Path:
    """Follows path operators; the straight segments of painted paths go to ``segments`` (in user
    space), as pdfminer reports them: paths ended by ``n`` (clipping only) paint nothing."""

    PAINT = {b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"}
    CLOSE_AND_PAINT = {b"s", b"b", b"b*"}

    def __init__(self, segments: list):
        self.segments = segments
        self.pending: list[tuple[float, float, float, float]] = []
        self.start = self.current = None

    def operator(self, operator: bytes, operands: list, cm: list[float]) -> None:
        def point(x, y):
            x, y = float(x), float(y)
            return x * cm[0] + y * cm[2] + cm[4], x * cm[1] + y * cm[3] + cm[5]

        if operator == b"m":
            self.start = self.current = point(*operands[:2])
        elif operator == b"l" and self.current is not None:
            end = point(*operands[:2])
            self.pending.append((*self.current, *end))
            self.current = end
        elif operator == b"re":
            x, y, w, h = (float(v) for v in operands[:4])
            corners = [point(x, y), point(x + w, y), point(x + w, y + h), point(x, y + h)]
            self.pending.extend((*a, *b) for a, b in zip(corners, corners[1:] + corners[:1]))
            self.start = self.current = corners[0]
        elif operator in (b"c", b"v", b"y") and self.current is not None:
            self.current = point(*operands[-2:])  # curves are not rules
        elif operator == b"h" or operator in self.CLOSE_AND_PAINT:
            if self.current is not None and self.start is not None and self.current != self.start:
                self.pending.append((*self.current, *self.start))
            self.current = self.start
        if operator in self.PAINT:
            self.segments.extend(self.pending)
        if operator in self.PAINT or operator == b"n":
            self.pending.clear()
            self.start = self.current = None


@dataclass
class Table:
    """A found table: its box, cells and column edges."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF user space, like the pieces
    cells: list[tuple[float, float, float, float]]  # the same, of each cell
    rows: list[list[str | None]]  # None: a cell covered by a merged cell
    spans: list[tuple[float, float]]  # y0, y1 of each row
    edges: list[float]  # left edge of each column
    bold: list[float]  # share of bold text in the first two rows
    headers: list[str | None] | None = None
    lines: list[str] = field(default_factory=list)


class TableText:
    """One document's page texts with tables as row lines; ``page_text`` page after page, in order."""

    def __init__(self, data: bytes, name: str, password: str | None = None):
        self.data, self.name, self.password = data, name, password
        self._pdf: Any = None
        self._failed = False
        self._previous: Table | None = None  # the last table of the previous page, if it had headers

    def page_text(self, number: int, scan: PageScan) -> str:
        """The text of page ``number`` (1-based): pypdf's, with the rows of its tables as lines."""
        previous, self._previous = self._previous, None
        try:
            if not scan.ruled:
                return scan.text
            tables = self._tables(number, scan)
            text, placed = _splice(scan, tables, previous)
        except Exception as exc:  # pdfplumber or pdfium on a page they cannot handle: pypdf's text stays
            log.debug("%s: page %d: tables not read (%s: %s); keeping the plain text",
                      self.name, number, type(exc).__name__, exc)
            return scan.text
        if placed and placed[-1].headers:
            self._previous = placed[-1]
        return text

    def close(self) -> None:
        if self._pdf is not None:
            with _PDFIUM:
                self._pdf.close()
            self._pdf = None

    def _tables(self, number: int, scan: PageScan) -> list[Table]:
        import pypdfium2

        with _PDFIUM:
            if self._pdf is None:
                if self._failed:
                    raise RuntimeError("pdfium could not open the file")
                try:
                    self._pdf = pypdfium2.PdfDocument(self.data, password=self.password or None)
                except Exception:
                    self._failed = True
                    raise
            page = self._pdf[number - 1]
            try:
                textpage = page.get_textpage()
                try:
                    chars = _chars(textpage)
                    tables = [_table(grid, chars, lambda i: _font(textpage, i)) for grid in scan.grids]
                finally:
                    textpage.close()
            finally:
                page.close()
        return sorted((t for t in tables if t is not None), key=lambda t: (-t.box[3], t.box[0]))


def _chars(textpage: Any) -> list[tuple[str, float, float] | tuple[str, None, None]]:
    """Each character of the page in content order, with the middle of its box (None for the spaces
    and line breaks pdfium adds, which have no box)."""
    count = textpage.count_chars()
    text = textpage.get_text_range(0, count)
    if len(text) != count:  # characters beyond the BMP come as two: one at a time then
        text = [textpage.get_text_range(i, 1) or " " for i in range(count)]
    chars = []
    for i, char in enumerate(text):
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        if right > left or top > bottom:
            chars.append((char, (left + right) / 2, (bottom + top) / 2))
        else:
            chars.append((char, None, None))
    return chars


def _font(textpage: Any, index: int) -> str:
    import ctypes

    import pypdfium2.raw as pdfium_c

    flags = ctypes.c_int()
    size = pdfium_c.FPDFText_GetFontInfo(textpage.raw, index, None, 0, ctypes.byref(flags))
    buffer = ctypes.create_string_buffer(max(size, 1))
    pdfium_c.FPDFText_GetFontInfo(textpage.raw, index, buffer, size, ctypes.byref(flags))
    return buffer.value.decode("utf-8", "replace")


def _table(grid: Any, chars: list, font) -> Table | None:
    """Our view of a pdfplumber table with its cells' text, or None when it is not a real table.
    ``font(i)``: the font name of character ``i``."""
    grid_rows = grid.rows
    keys = [(r, c) for r, row in enumerate(grid_rows) for c, cell in enumerate(row.cells) if cell is not None]
    texts: dict[tuple[int, int], list[str]] = {key: [] for key in keys}
    members: dict[int, list[int]] = {}  # row -> its characters (not spaces), for the bold test
    tops = [row.bbox[1] for row in grid_rows]
    x0, top, x1, bottom = grid.bbox
    current = None
    for index, (char, mx, my) in enumerate(chars):
        if mx is None:  # a space or line break pdfium inserted: it belongs with the character before
            if current is not None:
                texts[current].append(" ")
            continue
        current = None
        if not (x0 <= mx <= x1 and top <= -my <= bottom):
            continue
        for r in range(bisect.bisect_right(tops, -my) - 1, -1, -1):  # rows that start above the middle
            for c, cell in enumerate(grid_rows[r].cells):
                if cell is not None and cell[0] <= mx <= cell[2] and cell[1] <= -my <= cell[3]:
                    current = (r, c)
                    break
            if current is not None:
                break
        if current is not None:
            texts[current].append(char)
            if not char.isspace():
                members.setdefault(current[0], []).append(index)
    rows = [[None if cell is None else _cell("".join(texts[(r, c)])) for c, cell in enumerate(row.cells)]
            for r, row in enumerate(grid_rows)]
    kept = [r for r, row in enumerate(rows) if any(row)]
    if sum(1 for r in kept if sum(1 for c in rows[r] if c) >= 2) < 2:
        return None  # a frame around text, a rule under a heading: not a table
    edges = sorted({round(cell[0], 1) for cell in grid.cells})
    bold = [sum(1 for i in members.get(r, []) if BOLD.search(font(i))) / max(len(members.get(r, [])), 1)
            for r in kept[:2]]
    return Table(box=(x0, -bottom, x1, -top), cells=[(c[0], -c[3], c[2], -c[1]) for c in grid.cells],
                 rows=[rows[r] for r in kept], spans=[(-grid_rows[r].bbox[3], -grid_rows[r].bbox[1]) for r in kept],
                 edges=edges, bold=bold)


def _cell(value: str) -> str:
    return " ".join(value.replace("\x02", "-").replace("\ufffe", "-").split())  # pdfium: a hyphen at a line end


def _splice(scan: PageScan, tables: list[Table], previous: Table | None) -> tuple[str, list[Table]]:
    """The page text with each table's pieces replaced by its row lines; and the tables placed."""
    owner = [next((i for i, t in enumerate(tables) if _in_cell(p, t)), None) for p in scan.pieces]
    cells = ["".join("".join(c or "" for row in t.rows for c in row).split()) for t in tables]
    for n, (piece, o) in enumerate(zip(scan.pieces, owner)):
        if o is not None and "".join(piece.text.split()) not in cells[o]:
            owner[n] = None  # in the box but in no cell (a heading, a footnote mark): it stays where it is
    for i, table in enumerate(tables):
        _drop_split_rows(scan.pieces, owner, i, table)
    placed = []
    for i, table in enumerate(tables):
        written = "".join(p.text for p, o in zip(scan.pieces, owner) if o == i)
        if sum(1 for row in table.rows if sum(1 for c in row if c) >= 2) >= 2 and _same_text(written, table.rows):
            _set_headers(table, previous if not placed else None)
            table.lines = [line for line in (_row_line(row, table.headers) for row in table.rows) if line]
        if not table.lines:
            owner = [None if o == i else o for o in owner]  # pypdf's text stays for this one
            continue
        placed.append(table)
    out = ""
    done: set[int] = set()
    after_table = False
    for piece, o in zip(scan.pieces, owner):
        if o is None:
            text = piece.text
            if after_table and text.startswith("\n"):
                text = text[1:]  # the table's last line ended the line already
            after_table = after_table and not text
            out += text
        elif o not in done and piece.text.strip():  # the table goes where its first text was
            done.add(o)
            if out.strip() and not out.endswith("\n"):
                out += "\n"
            out += "\n".join(tables[o].lines) + "\n"
            after_table = True
    return out, placed


def _drop_split_rows(pieces: list[Piece], owner: list[int | None], i: int, table: Table) -> None:
    """Rows whose line goes on outside the grid (a label left of the shaded cells) stay pypdf's text:
    take them out of table ``i`` and give their pieces back."""
    owned = [p.y for p, o in zip(pieces, owner) if o == i and p.text.strip()]
    x0, _, x1, _ = table.box
    split = {p.y for p, o in zip(pieces, owner) if o != i and p.text.strip() and x0 - BOX_SLACK <= p.x <= x1
             and any(abs(p.y - y) <= SAME_LINE for y in owned)}
    if not split:
        return
    drop = {r for r, (y0, y1) in enumerate(table.spans) if any(y0 - SAME_LINE <= y <= y1 + SAME_LINE for y in split)}
    table.rows = [row for r, row in enumerate(table.rows) if r not in drop]
    table.spans = [span for r, span in enumerate(table.spans) if r not in drop]
    table.bold = table.bold if 0 not in drop else []
    for n, (piece, o) in enumerate(zip(pieces, owner)):
        if o == i and not any(y0 <= piece.y <= y1 for y0, y1 in table.spans):
            owner[n] = None


def _inside(x: float, y: float, box: tuple[float, float, float, float], slack: float = BOX_SLACK) -> bool:
    x0, y0, x1, y1 = box
    return x0 - slack <= x <= x1 + slack and y0 - slack <= y <= y1 + slack


def _in_cell(piece: Piece, table: Table) -> bool:
    """The piece starts in one of the table's cells: a few points of slack sideways (text may start on
    a cell's border), none up or down (the line above a table is not in it)."""
    if not _inside(piece.x, piece.y, table.box):
        return False
    return any(x0 - BOX_SLACK <= piece.x <= x1 + BOX_SLACK and y0 <= piece.y <= y1 for x0, y0, x1, y1 in table.cells)


def _same_text(written: str, rows: list[list[str | None]]) -> bool:
    """pypdf's text for the box and the table's cells are (nearly) the same characters."""
    a = Counter(written.replace(" ", "").replace("\n", ""))
    b = Counter("".join(c or "" for row in rows for c in row).replace(" ", ""))
    if not a or not b:
        return False
    return sum((a & b).values()) >= SAME_TEXT * max(sum(a.values()), sum(b.values()))


def _set_headers(table: Table, previous: Table | None) -> None:
    """Take the header row off ``table.rows`` into ``table.headers`` (or reuse ``previous``'s)."""
    first = table.rows[0]
    if previous is not None and previous.headers is not None and _same_columns(table, previous):
        if [c or "" for c in first] == [c or "" for c in previous.headers]:
            table.headers, table.rows = first, table.rows[1:]  # the header row, repeated
            return
        if not _bold_header(table):
            table.headers = previous.headers  # continues without a header row
            return
    if len(table.rows) > 1 and _looks_like_header(first, bool(table.bold) and table.bold[0] >= 0.6):
        table.headers, table.rows = first, table.rows[1:]


def _same_columns(table: Table, previous: Table) -> bool:
    return (len(table.rows[0]) == len(previous.headers or []) and len(table.edges) == len(previous.edges)
            and all(abs(a - b) <= SAME_EDGE for a, b in zip(table.edges, previous.edges)))


def _bold_header(table: Table) -> bool:
    return len(table.bold) == 2 and table.bold[0] >= 0.6 and table.bold[1] < 0.3


def _looks_like_header(row: list[str | None], bold: bool) -> bool:
    """Two or more cells, no amounts (years allowed), and short cells unless set in bold."""
    cells = [c for c in row if c]
    return (len(cells) >= 2 and (bold or all(len(c) <= HEADER_CELL_MAX for c in cells))
            and not any(AMOUNT.fullmatch(c) and not YEAR.fullmatch(c) for c in cells))


def _row_line(row: list[str | None], headers: list[str | None] | None) -> str:
    """One row as ``Header: value | Header: value.``; a merged header cell covers the columns to its
    right that pdfplumber reports as None, and values under one merged header are joined with a space."""
    names: list[tuple[str, bool]] = []  # (header, inherited from the left)
    for i in range(len(row)):
        header = headers[i] if headers and i < len(headers) else ""
        if header is None:
            names.append((names[-1][0] if names else "", True))
        else:
            names.append((header, False))
    parts: list[list[str]] = []  # [header, value]
    carry = ""  # a lone currency sign, written before the next value
    for (header, inherited), value in zip(names, row):
        if not value:
            continue
        if value in CURRENCY:
            carry = f"{carry} {value}".strip()
            continue
        value = f"{carry} {value}" if carry else value
        carry = ""
        if parts and inherited and header and parts[-1][0] == header:
            parts[-1][1] += " " + value
        else:
            parts.append([header, value])
    if carry:
        parts.append(["", carry])
    line = " | ".join(f"{h}: {v}" if h else v for h, v in parts)
    if len(parts) > 1 and line[-1] not in SENTENCE_END:
        line += "."  # a row is a sentence; a lone label ("Operating expenses") leads into the next row
    return line
