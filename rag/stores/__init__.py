"""Stage 3b: where nodes and vectors are persisted, by the ``store`` setting (one module each in ``backends/``).

``store`` is a registered name (``local``) or a URL, whose scheme names the backend
(``postgresql://user@host:port/db`` opens the ``postgresql`` store)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rag.errors import IndexMissingError
from rag.registry import Registry


@dataclass(frozen=True)
class StorePlugin:
    name: str
    help: str
    open: Callable[[Any], Any]  # config -> a rag.stores.base.Store
    order: int = 100


STORES: Registry[StorePlugin] = Registry("store", "store", "rag.stores.backends")


URL_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql"}


def store_name(setting: str) -> str:
    """The registry name for a ``store`` setting."""
    scheme, sep, _ = str(setting).partition("://")
    return URL_SCHEMES.get(scheme, scheme) if sep else str(setting)


def model_mismatch(where: str, built: str, configured: str) -> IndexMissingError:
    """The error for an index built with another embedding model than the configured one."""
    return IndexMissingError(
        f"The index in {where} was built with embedding model {built!r}, but {configured!r} is configured. "
        f"Re-run `rag ingest PATH` to rebuild it, or set RAG_EMBED_MODEL={built}.")


def open_store(config: Any) -> Any:
    """The ``rag.stores.base.Store`` that the config's ``store`` setting names."""
    return STORES.get(store_name(config.store)).open(config)
