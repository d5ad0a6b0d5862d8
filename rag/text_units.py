"""Units of retrieved text: table rows (ingest writes one per line) and prose sentences.

The bottom of the package: retrieval prunes contexts by these units, and the judges look for
a claim's evidence among them.
"""

from __future__ import annotations

import re

ROW_MARK = " | "  # ingest writes a table row as one line: "Header: cell | Header: cell"
GAP = "…"  # a line of its own where context pruning left text out: the text on either side is not adjacent
MAX_UNIT_WORDS = 120  # longer prose sentences are cut into pieces of this many words
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# A list number ("3." "4.2." "b)") ends a piece when a list item follows a sentence: it belongs to the next.
_LIST_NUMBER = re.compile(r"(?:^|(?<=[.:;!?])\s)((?:\d{1,2}(?:\.\d{1,2})*|[a-z])[.)])$")


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." (for reasons and messages)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def split_units(text: str) -> list[str]:
    """Table rows (one a line) and prose sentences (lines joined, then split at sentence ends)."""
    return [unit for paragraph in split_paragraphs(text) for unit in paragraph]


def split_paragraphs(text: str) -> list[list[str]]:
    """The units of ``text`` grouped as they stand: each table row alone, each run of prose lines
    (up to a blank line, a row or a pruning gap) as one group of sentences, in order."""
    groups: list[list[str]] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            pieces = []
            for sentence in _sentences(" ".join(prose)):
                tokens = sentence.split()
                pieces.extend(" ".join(tokens[i:i + MAX_UNIT_WORDS]) for i in range(0, len(tokens), MAX_UNIT_WORDS))
            groups.append(pieces)
            prose.clear()

    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line == GAP:  # a sentence never runs across a gap
            flush()
        elif ROW_MARK in line:
            flush()
            groups.append([line])
        else:
            prose.append(line)
    flush()
    return [kept for kept in ([u for u in g if re.search(r"\w", u)] for g in groups) if kept]


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        number = _LIST_NUMBER.search(out[-1]) if out else None
        if number:
            piece = f"{number.group(1)} {piece}"
            out[-1] = out[-1][: number.start()].strip()
            if not out[-1]:
                out.pop()
        out.append(piece)
    return out
