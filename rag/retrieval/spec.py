"""Retriever specs: a kind and its parameters, written ``kind`` or ``kind:key=value,key=value``.

Parameters that shape the nodes (chunk and window sizes) select an index; the others
(top-k, rerank, merge ratio) only change how the index is queried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag.errors import ConfigError
from rag.retrieval import RETRIEVER_KINDS
from rag.retrieval.kind import RetrieverKind
from rag.retrieval.nodes import ParserSpec


@dataclass(frozen=True)
class RetrieverSpec:
    kind: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def parse(cls, spec: "str | RetrieverSpec", config: Any, **overrides: Any) -> "RetrieverSpec":
        """``"kind"`` or ``"kind:key=value,key=value"`` (plus keyword overrides) -> full spec."""
        if isinstance(spec, RetrieverSpec):
            kind, given = spec.kind, dict(spec.params)
        else:
            kind, given = split_spec(spec)
        values = RETRIEVER_KINDS.get(kind).resolve(
            config, {**given, **{k: v for k, v in overrides.items() if v is not None}})
        return cls(kind, tuple(values.items()))

    @property
    def kind_plugin(self) -> RetrieverKind:
        return RETRIEVER_KINDS.get(self.kind)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def parser_spec(self) -> ParserSpec:
        shaping = {p.name for p in self.kind_plugin.params if p.shapes_nodes}
        return ParserSpec.of(self.kind, {k: v for k, v in self.params if k in shaping})

    @property
    def name(self) -> str:
        """Human-readable and unique per parameter set: used as the app version in evaluations."""
        shown = ",".join(f"{k}={_show(v)}" for k, v in self.params if not self._silent(k, v))
        return f"{self.kind}[{shown}]"

    def _silent(self, key: str, value: Any) -> bool:
        """Fusion weights say nothing outside hybrid mode, or at their neutral 1.0; one hop is the plain
        search; a budget of 0 is no pruning."""
        if key == "hops":
            return value == 1
        if key == "context_budget":
            return not value  # versions named before pruning existed keep their names
        return key in ("dense_weight", "bm25_weight") and (self.values.get("mode") != "hybrid" or value == 1.0)

    def __str__(self) -> str:
        return self.name


def split_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"kind:a=1,b=2"`` -> ``("kind", {"a": "1", "b": "2"})``; values are parsed by the kind."""
    kind, _, rest = text.strip().partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in _split_params(rest))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"Retriever {text!r}: expected key=value, got {item!r}.")
        params[key.strip()] = value.strip()
    return kind.strip(), params


def _split_params(text: str) -> list[str]:
    # chunk_sizes=2048,512 contains commas: a piece without "=" continues the previous value.
    out: list[str] = []
    for piece in text.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return str(value)
