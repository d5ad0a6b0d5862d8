"""Named registries of pluggable parts: retriever kinds, embedders, generators, rerankers, judges, stores.

Each part lives in its own module inside the registry's package and declares itself with a
module-level constant (``PLUGIN = ...``); the registry imports every module of that package the
first time it is asked for a name. So adding a retriever kind (or a generator, a judge ...) is
adding one file, and the plugins never import the registry back (no import cycle).

Plugin modules must be cheap to import (heavy libraries inside functions): the CLI lists the
choices in ``rag --help`` without loading torch or LlamaIndex.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any, Generic, Iterator, TypeVar

from rag.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> part. ``get`` of an unknown name raises a ConfigError that lists the choices."""

    def __init__(self, what: str, setting: str, package: str | None = None, attribute: str = "PLUGIN"):
        self.what = what  # "retriever kind": used in messages
        self.setting = setting  # the config setting or option that names the part
        self.package = package
        self.attribute = attribute
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}
        self._discovered = package is None
        self._lock = threading.Lock()

    def register(self, name: str, item: T, help: str = "") -> T:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = item
        self._help[name] = help or getattr(item, "help", "") or ""
        return item

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)
        self._help.pop(name, None)

    def get(self, name: str) -> T:
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"Unknown {self.what} {name!r} (setting {self.setting}). Choose one of: {', '.join(self.names())}."
            ) from None

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def names(self) -> list[str]:
        self._discover()
        order = {name: getattr(item, "order", 100) for name, item in self._items.items()}
        return sorted(self._items, key=lambda n: (order[n], n))

    def help(self, name: str) -> str:
        self._discover()
        return self._help.get(name, "")

    def __iter__(self) -> Iterator[T]:
        return iter([self._items[n] for n in self.names()])

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            package = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
                if info.name.startswith("_"):
                    continue
                module = importlib.import_module(f"{self.package}.{info.name}")
                item = getattr(module, self.attribute, None)
                if item is not None:
                    self.register(getattr(item, "name", info.name), item)
            self._discovered = True


# The two registries that Config checks settings against are made here, at the bottom, so that config imports no
# stage; their stages hand them on with their part types (rag.retrieval.RETRIEVER_KINDS, rag.generation.GENERATORS).
RETRIEVER_KINDS: Registry[Any] = Registry("retriever", "--retriever", "rag.retrieval.kinds")
GENERATORS: Registry[Any] = Registry("generator provider", "llm_provider", "rag.generation.providers")


def model_name(config: Any) -> str | None:
    """The generator's model as used: ``llm_model``, else the provider's default (``rag.generation`` hands it on)."""
    return config.llm_model or GENERATORS.get(config.llm_provider).default_model
