"""What a retriever kind is: its parameters (with defaults from the config), how it splits a
document into nodes, which nodes get vectors, and the retriever it builds over an index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rag.errors import ConfigError
# The kinds' parameters take the same value parsers as the settings (imported from here by the kinds).
from rag.value_parsers import descending_sizes, non_negative_int, optional_top_n, positive_int, ratio  # noqa: F401


@dataclass(frozen=True)
class Param:
    """One retriever parameter. ``shapes_nodes``: changing it needs another index."""

    name: str
    config_field: str | None  # where the default comes from; None: no default (off)
    parse: Callable[[Any], Any]  # raises ValueError on bad values
    shapes_nodes: bool = False


class RetrieverKind:
    """Base class of the retriever kinds in ``rag/retrieval/kinds/`` (one instance each, as ``PLUGIN``)."""

    params: tuple[Param, ...] = ()

    def __init__(self, name: str, help: str, order: int = 100):
        self.name, self.help, self.order = name, help, order

    def node_parser(self, params: dict[str, Any]) -> Any:
        """The LlamaIndex node parser for the node-shaping parameters."""
        raise NotImplementedError

    def embedded(self, nodes: list[Any]) -> list[bool]:
        """Which nodes get a vector (all, unless the kind keeps some only in the docstore)."""
        return [True] * len(nodes)

    def retriever(self, first_stage: Any, storage: Any, params: dict[str, Any]) -> tuple[Any, list[Any]]:
        """The retriever built on ``first_stage`` (the ``mode``'s top-k nodes) and the postprocessors
        that follow it (before rerank)."""
        return first_stage, []

    def check(self, params: dict[str, Any]) -> None:
        """Raise ValueError with a message when parameters do not fit together."""

    def resolve(self, config: Any, given: dict[str, Any]) -> dict[str, Any]:
        """Every parameter: config defaults, overridden by ``given`` (validated)."""
        allowed = {p.name: p for p in self.params}
        values = {p.name: (getattr(config, p.config_field) if p.config_field else None) for p in self.params}
        for key, value in given.items():
            if key not in allowed:
                raise ConfigError(f"Retriever {self.name} has no parameter {key!r}. It takes: {', '.join(allowed)}.")
            values[key] = value
        for key, value in values.items():
            try:
                values[key] = allowed[key].parse(value)
            except (TypeError, ValueError):
                source = f"setting {allowed[key].config_field}" if key not in given else "value"
                raise ConfigError(f"Retriever {self.name}: invalid {source} {key}={value!r}.") from None
        try:
            self.check(values)
        except ValueError as exc:
            raise ConfigError(f"Retriever {self.name}: {exc}") from None
        return values


def first_stage_params(mode_field: str, hops_field: str) -> tuple[Param, ...]:
    """The parameters every kind has for its first stage (see ``rag/retrieval/modes``)."""
    return (
        Param("mode", mode_field, mode_name),
        Param("dense_weight", "dense_weight", non_negative_float),
        Param("bm25_weight", "bm25_weight", non_negative_float),
        Param("hops", hops_field, hop_count),
    )


def pruning_params() -> tuple[Param, ...]:
    """What every kind takes after rerank: the token budget of context pruning (0: off)."""
    return (Param("context_budget", "context_budget", non_negative_int),)


# ---------------------------------------------------------------- parameter parsers

def mode_name(value: Any) -> str:
    from rag.retrieval import MODES

    name = str(value).strip().lower()
    if name not in MODES:
        raise ValueError(value)
    return name


def hop_count(value: Any) -> int:
    number = int(value)
    if number not in (1, 2):
        raise ValueError(value)
    return number


def non_negative_float(value: Any) -> float:
    number = float(value)
    if not number >= 0:  # also rejects NaN
        raise ValueError(value)
    return number
