"""Stage 3b: where nodes and vectors are persisted, by the ``store`` setting (one module each in ``backends/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rag.registry import Registry


@dataclass(frozen=True)
class Store:
    name: str
    help: str
    open: Callable[[Any], Any]  # config -> an index store with sync / load / ensure_index / manifest
    order: int = 100


STORES: Registry[Store] = Registry("store", "store", "rag.stores.backends")


def open_store(config: Any) -> Any:
    return STORES.get(config.store).open(config)
