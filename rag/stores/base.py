"""What a store backend must provide. ``rag.ingest.sync`` decides what changed and embeds it; a
store only keeps what it is given and commits it all at once, under its writer lock.

A store's ``manifest()`` says what is current, in one shape for every backend::

    {"embed_model": ..., "embed_dim": ..., "source": ..., "updated": ..., "files": {name: {"sha256", "pages"}},
     "indexes": {spec key: {"kind", "params", "default", "nodes", "vectors", "dim", ...}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol

from rag.config import Config
from rag.retrieval.nodes import ParsedNodes, ParserSpec
from rag.types import IngestReport, PdfText


@dataclass
class FileVersion:
    """One PDF at one content hash, as an index holds it."""

    name: str
    sha256: str
    pages: int
    text: PdfText | None = None  # its extracted text, once read or looked up
    file: Path | None = None  # where to read it again if the store lacks its text


@dataclass
class StoredNodes:
    """The nodes of one file for one parser spec, in order, with the vectors of the embedded ones."""

    parsed: ParsedNodes
    vectors: Any  # float32 array, one row per node whose ``parsed.embed`` is True, in node order


def spec_of(entry: dict[str, Any]) -> ParserSpec:
    """The parser spec of a manifest's index entry."""
    return ParserSpec.of(entry["kind"], {k: v for k, v in entry["params"].items() if k != "kind"})


class StoreWriter(Protocol):
    """What a writer holding the store's lock can do. Nothing is visible to readers until ``commit``
    (or ``add_index``) returns, and a failure before that leaves the previous index as it was."""

    def previous(self, report: IngestReport) -> dict[str, Any] | None:
        """The manifest to update (None: a new store); says in ``report`` if it was damaged."""

    def texts_current(self, manifest: dict[str, Any]) -> bool:
        """The stored texts come from the current PDF text extraction."""

    def keep_text(self, pdf: PdfText) -> None:
        """A freshly read text, for this commit (a store may also cache it at once)."""

    def needs_nodes(self, spec: ParserSpec, documents: list[FileVersion], renewed: set[str]) -> list[FileVersion]:
        """The documents whose nodes for ``spec`` must be parsed and embedded before the commit."""

    def keep_nodes(self, spec: ParserSpec, document: FileVersion, nodes: StoredNodes) -> None:
        """Parsed and embedded nodes of one document, for this commit (a store may cache them at once)."""

    def commit(self, documents: list[FileVersion], renewed: set[str], specs: list[ParserSpec],
               defaults: dict[str, bool], source: str | None, report: IngestReport) -> bool:
        """Make ``documents`` (``renewed``: new or changed ones) the indexed files of every index of
        ``specs`` and drop the rest; False when nothing changed."""

    def add_index(self, spec: ParserSpec, documents: list[FileVersion]) -> None:
        """Add the index of ``spec`` (an on-demand one, not default) over the current documents."""


class Store(Protocol):
    """The persisted indexes of one place (a folder, a database)."""

    config: Config

    def where(self) -> str:
        """The place, as messages show it (never a password)."""

    def manifest(self) -> dict[str, Any] | None:
        """What is current; None for an empty store."""

    def require_manifest(self) -> dict[str, Any]:
        """The manifest, or an IndexMissingError that says what to do (none yet, another model)."""

    def writer(self, wait_s: float) -> ContextManager[StoreWriter]:
        """The store's writer lock, waiting up to ``wait_s`` seconds for another writer (StoreBusyError)."""

    def index_entry(self, spec: ParserSpec) -> dict[str, Any] | None:
        """The manifest entry of the built index of ``spec``, or None."""

    def stored_text(self, name: str, sha256: str) -> PdfText | None:
        """The stored text of one file version, or None."""

    def stored_nodes(self, spec: ParserSpec, document: FileVersion) -> StoredNodes | None:
        """The stored nodes of one file version for ``spec``, or None."""

    def reset(self, everything: bool = False, confirm: Callable[[str], bool] | None = None) -> str:
        """Delete what the store wrote (``everything``: also the evaluation runs), never anything else,
        once ``confirm(what)`` says yes; returns what was done, in one line."""

    def load(self, spec: ParserSpec, progress: bool = False) -> Any:
        """(VectorStoreIndex, StorageContext) of the built index of ``spec``."""

    def lexical(self, spec: ParserSpec) -> Any:
        """BM25 over the embedded nodes of ``spec``'s index (``.search(query, top_k)``)."""

    def node_vectors(self, spec: ParserSpec) -> Any:
        """The stored vectors of the embedded nodes of ``spec``'s index (``.get(node_ids)``)."""
