"""Parsers of setting and parameter values, shared by the config and the retriever kinds'
parameters: each returns the value parsed or raises ValueError."""

from __future__ import annotations

from typing import Any


def positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def ratio(value: Any) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


def optional_top_n(value: Any) -> int | None:
    """``None``/``0``/``none``: no rerank."""
    if value is None or str(value).strip().lower() in ("none", "0", ""):
        return None
    return positive_int(value)


def descending_sizes(value: Any) -> tuple[int, ...]:
    items = value.replace("[", "").replace("]", "").replace("/", ",").split(",") if isinstance(value, str) else value
    sizes = tuple(int(x) for x in items if str(x).strip())
    if not sizes or any(s <= 0 for s in sizes) or list(sizes) != sorted(set(sizes), reverse=True):
        raise ValueError(value)
    return sizes
