"""Parameter sweeps: ``sentence_window:window_size=1|3|5`` expands to one spec per value.

Alternatives are separated by ``|``; several swept parameters in one spec give every
combination (``top_k=4|8,rerank_top_n=2|4`` -> 4 specs). Values may contain commas
(``auto_merging:chunk_sizes=2048,512|2048,512,128`` -> 2 specs). All versions of a sweep run
on the same questions, so :func:`best_line` can say whether the best is really better.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable

from rag.errors import ConfigError
from rag.retrieval.spec import split_spec


def expand(specs: Iterable[Any]) -> list[Any]:
    """Every combination of every spec's ``|`` alternatives, in order; other items pass through."""
    out: list[Any] = []
    for spec in specs:
        if not isinstance(spec, str) or "|" not in spec:
            out.append(spec)
            continue
        kind, params = split_spec(spec)
        choices = []
        for key, value in params.items():
            options = [v.strip() for v in value.split("|")]
            if any(not v for v in options):
                raise ConfigError(f"Retriever {spec!r}: {key} has an empty alternative; write e.g. {key}=1|3|5.")
            choices.append([(key, v) for v in options])
        for combination in itertools.product(*choices):
            out.append(f"{kind}:" + ",".join(f"{k}={v}" for k, v in combination))
    return out


def grid_specs(path: str | Path) -> list[str]:
    """Sweep specs from a TOML grid file, one table per retriever kind, a list per swept parameter::

        [sentence_window]
        window_size = [1, 3, 5]

        [auto_merging]
        chunk_sizes = [[2048, 512], [2048, 512, 128]]

    A list holds the alternatives, so a list-valued parameter is a list of lists. An empty table
    (``[basic]``) is that kind with its defaults.
    """
    import tomllib

    path = Path(path)
    try:
        grid = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Grid file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Grid file {path}: not valid TOML ({exc}).") from None
    specs = []
    for kind, params in grid.items():
        if not isinstance(params, dict):
            raise ConfigError(f"Grid file {path}: {kind} must be a table, e.g. [{kind}] then key = [values].")
        parts = []
        for key, values in params.items():
            options = values if isinstance(values, list) else [values]  # a list is always the alternatives
            parts.append(f"{key}=" + "|".join(_value(v) for v in options))
        specs.append(f"{kind}:{','.join(parts)}" if parts else kind)
    if not specs:
        raise ConfigError(f"Grid file {path} names no retriever: add e.g. [sentence_window] window_size = [1, 3].")
    return specs


def _value(value: Any) -> str:
    if isinstance(value, list):  # a list-valued parameter, e.g. chunk_sizes
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def best_line(board: Any) -> str | None:
    """"best: X (correctness 0.712 [0.61, 0.80]), ranked by key-fact correctness; runner-up Y ...: the best
    is NOT significantly better than the runner-up", on the metric that ranked the board."""
    import pandas as pd

    from rag.evaluation.ranking import ranked_by_text

    key = board.attrs.get("ranked_by")
    if board.empty or not key:
        return None
    first = board.iloc[0]

    def score(row: Any) -> str:
        lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
        interval = "" if lo is None or pd.isna(lo) else f" [{lo:.2f}, {hi:.2f}]"
        return f"{key} {row[key]:.3f}{interval}"

    line = f"best: {first['retriever']} ({score(first)}), {ranked_by_text(key)}"
    if len(board) < 2:
        return line
    second = board.iloc[1]
    diff = second.get("vs_best") or "n/a"
    significant = diff.endswith(("better", "worse"))
    verdict = "significantly better" if significant else "NOT significantly better"
    return (f"{line}; runner-up {second['retriever']} ({score(second)}), runner-up minus best on the same "
            f"questions: {diff}: the best is {verdict} than the runner-up")
