"""Section headings of a PDF's text, so that each chunk can carry the heading it sits under.

A chunk cut from the middle of a section often never names what it is about: "Deposit must
happen within 12 months of the end of data collection" says nothing of the repository or the lab
that the question names, so neither its vector nor BM25 finds it. The parsers put the section's
heading path ("7. Sharing and Publication > 7.1 Deposit in the repository") and the document's
title into each node's metadata, which LlamaIndex adds to the text that is embedded and indexed
(not to what the LLM reads).

Headings are found from the text alone: a short line that opens with a section number ("7.",
"7.1", "A.2", "Item 7.", "Section 3", "Part II") followed by a capitalised word and that does not
end like a sentence. Unnumbered headings are not recognised (the text has no font sizes).
"""

from __future__ import annotations

import bisect
import re

from rag.text_units import ROW_MARK

MAX_HEADING_WORDS = 10
MAX_HEADING_CHARS = 80
LABELLED_SCALE = 1.6  # "Item", "Section" ... headings may be this much longer
MAX_TITLE_WORDS = 16
TITLE_CONTINUATIONS = 2  # wrapped lines of a long title
MAX_CONTINUATION_WORDS = 6
NUMBERED = re.compile(
    r"^(?:(?P<label>item|section|chapter|part|article|appendix)\s+)?"
    r"(?P<number>\d{1,2}[A-Z]?(?:\.\d{1,2}){0,3}|[A-Z](?:\.\d{1,2}){0,3}|[IVX]{1,5})[.)]?\s+"
    r"(?P<title>[A-Z][^\s]*(?:\s+\S+)*)$",
    re.IGNORECASE,
)


def heading_level(line: str) -> int | None:
    """1 for "7. Sharing and Publication", 2 for "7.1 Deposit in the repository", ...; None for a
    line that is no numbered heading (a sentence, a list step, a table row)."""
    line = " ".join(line.split())
    match = NUMBERED.match(line) if line and ROW_MARK not in line else None
    if match is None or not match["title"][0].isupper() or line[-1] in ".,;:!?":
        return None
    # A long numbered line is a wrapped list step; a labelled one ("Item 2. Management's Discussion
    # and Analysis of Financial Condition and Results of Operations") may run long.
    scale = LABELLED_SCALE if match["label"] else 1
    if len(line) > MAX_HEADING_CHARS * scale or len(line.split()) > MAX_HEADING_WORDS * scale:
        return None
    number = match["number"]
    if not match["label"] and len(number) == 1 and number.isalpha() and number.upper() not in "ABCDEFGH":
        return None  # "I think ..." is no section I
    return number.count(".") + 1


class Sections:
    """Heading paths by offset in one document's text."""

    def __init__(self, text: str):
        self.title = _title(text)
        self._starts: list[int] = []
        self._paths: list[str] = []
        path: list[tuple[int, str]] = []  # (level, heading) from the outermost down
        offset = 0
        for line in text.splitlines(keepends=True):
            level = heading_level(line)
            if level is not None:
                path = [(lv, h) for lv, h in path if lv < level] + [(level, " ".join(line.split()))]
                self._starts.append(offset)
                self._paths.append(" > ".join(h for _, h in path))
            offset += len(line)

    def at(self, offset: int) -> str:
        """The heading path in force at ``offset`` ("" before the first heading)."""
        i = bisect.bisect_right(self._starts, offset) - 1
        return self._paths[i] if i >= 0 else ""


def _title(text: str) -> str:
    """The document's first line when it reads as a title (short, no sentence end), with the short
    lines that continue it where the title wraps ("... of the Coastal" / "Sediment Dynamics Lab")."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line][:1 + TITLE_CONTINUATIONS]
    title: list[str] = []
    for line in lines:
        looks_like_title = ROW_MARK not in line and line[-1] not in ".,;:" and heading_level(line) is None
        if not looks_like_title or (title and len(line.split()) > MAX_CONTINUATION_WORDS):
            break
        title.append(line)
    joined = " ".join(title)
    return joined if title and len(joined.split()) <= MAX_TITLE_WORDS else ""
