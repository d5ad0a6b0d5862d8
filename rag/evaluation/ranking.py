"""Leaderboards from one run's rows, ranking, and the chart.

An app version is named ``"<retriever spec> llm=<generator> judge=<judge>"`` (see
:func:`version_name`), so versions that differ in any retriever parameter, generator or judge
are separate rows, and the judge of every score is known when reading the database back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.evaluation import TRIAD

if TYPE_CHECKING:  # pandas loads on use: the package imports this module eagerly
    import pandas as pd

VERSION_RE = re.compile(r"^(?P<retriever>.*?)(?: llm=(?P<llm>\S+))?(?: judge=(?P<judge>\S+))?$")


def version_name(retriever: str, llm: str, judge: str) -> str:
    return f"{retriever} llm={llm} judge={judge}"


def parse_version(version: str) -> dict[str, str | None]:
    match = VERSION_RE.match(version or "")
    if not match:
        return {"retriever": version, "llm": None, "judge": None}
    return match.groupdict()


def rank(df: pd.DataFrame) -> pd.DataFrame:
    """Sort best first (mean of the triad, then correctness, then speed) and number the rows."""
    import pandas as pd

    if df.empty:
        return df.assign(rank=pd.Series(dtype=int))
    keys = [c for c in ("triad", "correctness", "latency_s") if c in df.columns]
    ascending = [c == "latency_s" for c in keys]
    df = df.sort_values(keys, ascending=ascending, na_position="last", kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


def from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per app version: means of the triad, reference metrics, latency and tokens."""
    import pandas as pd

    columns = ["version", "retriever", "kind", "judge", "questions", *TRIAD, "triad", "correctness", "token_f1",
               "answer_cosine", "hit_rate", "mrr", "ndcg", "latency_s", "tokens", "errors"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=["rank", *columns])
    out = []
    for version, group in rows.groupby("version", sort=False):
        ok = group[group["error"].isna()] if "error" in group else group
        entry: dict[str, Any] = {
            "version": version,
            "retriever": group["retriever"].iloc[0],
            "kind": group["kind"].iloc[0],
            "judge": group["judge"].iloc[0],
            "questions": int(len(group)),
        }
        for col in (*TRIAD, "correctness", "token_f1", "answer_cosine", "hit_rate", "mrr", "ndcg",
                    "latency_s", "tokens"):
            entry[col] = _mean(ok, col)
        triad = [entry[c] for c in TRIAD]
        entry["triad"] = None if any(v is None for v in triad) else sum(triad) / 3
        entry["errors"] = int(len(group) - len(ok))
        out.append(entry)
    return rank(pd.DataFrame(out, columns=columns))


def _mean(df: pd.DataFrame, col: str) -> float | None:
    import pandas as pd

    if col not in df:
        return None
    values = pd.to_numeric(df[col], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def chart(df: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """A PNG with one panel per triad score and one for mean latency, one bar per version."""
    # A bare Figure draws off-screen without pyplot, so the caller's backend (e.g. inline
    # plots in Jupyter) is left alone.
    import pandas as pd
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [str(v) for v in (df["retriever"] if "retriever" in df else df["version"])]
    labels = [_wrap(label) for label in labels]
    panels = [("context_relevance", "Context relevance", (0, 1)), ("groundedness", "Groundedness", (0, 1)),
              ("answer_relevance", "Answer relevance", (0, 1)), ("latency_s", "Mean latency (s)", None)]
    colors = colormaps["tab10"].colors
    fig = Figure(figsize=(4.2 * 4, 1.6 + 0.5 * max(len(labels), 2)))
    axes = fig.subplots(1, 4, squeeze=False)
    for ax, (col, name, limits) in zip(axes[0], panels):
        values = pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series([float("nan")] * len(df))
        y = range(len(labels))
        ax.barh(list(y), values.fillna(0).tolist(), color=[colors[i % len(colors)] for i in y])
        for i, v in zip(y, values):
            ax.text(0 if pd.isna(v) else v, i, " n/a" if pd.isna(v) else f" {v:.2f}", va="center", fontsize=8)
        ax.set_title(name)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels if ax is axes[0][0] else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        if limits:
            ax.set_xlim(*limits)
        else:
            top = values.max() if values.notna().any() else 1.0
            ax.set_xlim(0, (top or 1.0) * 1.25)
    judges = sorted({str(j) for j in df["judge"]}) if "judge" in df else []
    fig.suptitle(title or ("RAG triad by app version" + (f" (judge: {', '.join(judges)})" if judges else "")))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _wrap(label: str, width: int = 34) -> str:
    if len(label) <= width:
        return label
    # Break retriever specs after commas so long parameter lists stay readable.
    out, line = [], ""
    for piece in re.split(r"(?<=[,\[])", label):
        if line and len(line) + len(piece) > width:
            out.append(line)
            line = ""
        line += piece
    out.append(line)
    return "\n".join(out)
