"""The plain data the stages hand each other and the API returns: no behaviour beyond formatting."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why (the reason says what to do)."""

    path: str
    reason: str
    failed: bool = True  # False: not a PDF, ignored on purpose; True: a PDF that could not be read

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# Bump when read_pdf's text (rag/ingest/pdf.py) changes for the same file, so stores read their PDFs
# again; bump with it rag.retrieval.nodes.NODE_FORMAT (cached nodes are keyed by the file's hash, not
# its text) and the PostgreSQL store's FORMAT (rag/stores/backends/postgres.py).
TEXT_FORMAT = 2  # 2: table rows as lines with their column headers (rag/ingest/tables.py)


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
        return max(1, bisect.bisect_right(self.page_starts, max(offset, 0)))

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "text": self.text, "page_starts": self.page_starts}

    @classmethod
    def from_json(cls, data: dict) -> "PdfText":
        return cls(**data)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[Skipped]:
        """Skipped PDFs (as opposed to other files that were ignored)."""
        return [s for s in self.skipped if s.failed]

    @property
    def ignored(self) -> list[Skipped]:
        """Files that are not PDFs, left alone on purpose."""
        return [s for s in self.skipped if not s.failed]

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed) and not self.embedded

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
            "removed": self.removed, "skipped": [{"path": s.path, "reason": s.reason, "failed": s.failed} for s in self.skipped],
            "messages": self.messages, "indexes": self.indexes, "pages": self.pages,
            "embedded": self.embedded, "seconds": round(self.seconds, 3),
        }


@dataclass
class Source:
    """A retrieved piece of text and where it comes from."""

    file: str
    page: int
    page_end: int
    score: float | None
    text: str

    @property
    def citation(self) -> str:
        pages = f"p. {self.page}" if self.page == self.page_end else f"pp. {self.page}-{self.page_end}"
        return f"{self.file} {pages}"


@dataclass
class QueryResult:
    question: str
    answer: str
    sources: list[Source]
    retriever: str  # full name with parameters
    kind: str
    params: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None  # "stop", or "length" when the answer hit max_new_tokens
    cited: list[int] = field(default_factory=list)  # the [n] of the answer that name a source
    unknown_citations: list[int] = field(default_factory=list)  # [n] with no source n: the model made them up

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for source, raw in zip(self.sources, data["sources"]):
            raw["citation"] = source.citation
        data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        return data

    def __str__(self) -> str:
        return self.answer + self.footer()

    def footer(self) -> str:
        """What follows the answer's text: truncation and citation warnings, then the sources."""
        lines = [" [... cut off at max_new_tokens]" if self.truncated else ""]
        if self.unknown_citations:
            lines.append("(cites " + ", ".join(f"[{n}]" for n in self.unknown_citations) + ", which is not a source)")
        lines += ["", "Sources:"]
        for i, s in enumerate(self.sources, start=1):
            score = f" (score {s.score:.2f})" if s.score is not None else ""
            lines.append(f"  [{i}] {s.citation}{score}")
        return "\n".join(lines)


