"""Leaderboards from one run's rows, ranking, and the chart.

An app version is named ``"<retriever spec> llm=<generator> judge=<judge>"`` (see
:func:`version_name`), so versions that differ in any retriever parameter, generator or judge
are separate rows, and the judge of every score is known when reading the database back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

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
    """Sort best first by :func:`ranking_keys` (key-fact correctness, then the triad, then speed;
    without reference answers the triad, then speed) and number the rows."""
    import pandas as pd

    if df.empty:
        return df.assign(rank=pd.Series(dtype=int))
    keys = ranking_keys(df)
    ascending = [c == "latency_s" for c in keys]
    df = df.sort_values(keys, ascending=ascending, na_position="last", kind="mergesort").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


SCORE_METRICS = (*TRIAD, "triad", "citation_faithfulness", "correctness", "token_recall", "token_f1", "answer_cosine", "hit_rate", "mrr",
                 "ndcg")
COST_METRICS = ("n_contexts", "latency_s", "tokens")  # n_contexts: how many contexts the LLM got
CUTOFF_RE = re.compile(r"^(hit_rate|mrr|ndcg)@(\d+)$")


def metric_columns(rows: pd.DataFrame) -> list[str]:
    """The metrics a leaderboard shows for these rows: scores, cut-off metrics (sorted by k), costs."""
    cutoffs = sorted((c for c in rows.columns if CUTOFF_RE.match(str(c))),
                     key=lambda c: (CUTOFF_RE.match(c).group(1), int(CUTOFF_RE.match(c).group(2))))
    return [*SCORE_METRICS, *cutoffs, *COST_METRICS]


def with_row_triad(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a per-question ``triad`` (mean of the three scores; missing when one is missing)."""
    import pandas as pd

    if "triad" in rows or not all(c in rows for c in TRIAD):
        return rows
    scores = rows[list(TRIAD)].apply(pd.to_numeric, errors="coerce")
    return rows.assign(triad=scores.mean(axis=1, skipna=False))


# What the user cares about first: whether the answers state the right facts. The triad ranks
# only when no question has a reference answer (or key facts) to check the answers against.
RANKED_BY = {"correctness": "key-fact correctness", "triad": "the RAG triad (no reference answers)"}


def ranking_metric(board: pd.DataFrame) -> str | None:
    """The metric that ranks, and what "best" and "within noise" refer to: ``correctness`` when
    any row has it, else ``triad`` when any has that, else None."""
    for key in RANKED_BY:
        if key in board and board[key].notna().any():
            return key
    return None


def ranking_keys(df: pd.DataFrame) -> list[str]:
    """The sort keys of :func:`rank`: the ranking metric, the triad beside correctness, then speed."""
    key = ranking_metric(df)
    keys = [key, "triad"] if key == "correctness" else [key]
    return [c for c in dict.fromkeys([*keys, "latency_s"]) if c and c in df.columns]


def ranked_by_text(key: str | None) -> str:
    """``"ranked by key-fact correctness"`` / ``"ranked by the RAG triad (no reference answers)"``."""
    return f"ranked by {RANKED_BY.get(key or '', key or 'nothing (no scores)')}"


def from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per app version, best first.

    For each metric: the mean over the rows that have it (``<m>``), its 95% bootstrap interval
    (``<m>_lo``, ``<m>_hi``) and how many rows it is over (``<m>_n``). Failed rows are counted in
    ``errors`` and never averaged in. With a ``diagnosis`` column, ``retrieval_miss``,
    ``generation_miss`` and ``abstained`` count the wrong answers by cause. ``vs_best``: this
    version minus the best one on the ranking metric, paired over the same questions, with its
    interval and whether it is within noise.
    """
    import pandas as pd

    from rag.evaluation.diagnosis import miss_counts
    from rag.evaluation.stats import compare, summarize

    base = ["version", "retriever", "kind", "judge", "questions"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=["rank", *base, *SCORE_METRICS, "contexts", "latency_s", "tokens", "errors",
                                     "vs_best"])
    rows = with_row_triad(rows)
    metrics = [m for m in metric_columns(rows) if m in rows]
    stats = summarize(rows, metrics).set_index(["version", "metric"])
    out = []
    for version, group in rows.groupby("version", sort=False):
        failed = int(group["error"].notna().sum()) if "error" in group else 0
        entry: dict[str, Any] = {"version": version, "questions": int(len(group)), "errors": failed}
        for col in ("retriever", "kind", "judge"):
            entry[col] = group[col].iloc[0] if col in group else None
        for metric in metrics:
            s = stats.loc[(version, metric)]
            entry.update({metric: s["mean"], f"{metric}_lo": s["lo"], f"{metric}_hi": s["hi"],
                          f"{metric}_n": int(s["n"])})
        if "diagnosis" in group and group["diagnosis"].notna().any():  # wrong answers by cause
            entry.update(miss_counts(group["diagnosis"].dropna()))
        out.append(entry)
    board = rank(pd.DataFrame(out))
    board = board.rename(columns=lambda c: c.replace("n_contexts", "contexts", 1) if c.startswith("n_contexts") else c)
    key = ranking_metric(board)
    board["vs_best"] = None
    if key is not None and len(board) > 1:
        best = board["version"].iloc[0]
        board.loc[1:, "vs_best"] = [str(compare(rows, v, best, key)) for v in board["version"].iloc[1:]]
    board.attrs["ranked_by"] = key
    return board


def interval_text(board: pd.DataFrame, metric: str) -> list[str]:
    """``"0.712 [0.61, 0.80]"`` per version (``n=3`` added where fewer rows than questions had a value)."""
    import pandas as pd

    out = []
    for _, row in board.iterrows():
        mean = row.get(metric)
        if mean is None or pd.isna(mean):
            out.append("n/a")
            continue
        lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
        cost = _is_cost(metric)
        text = f"{mean:.2f}" if cost else f"{mean:.3f}"
        if not cost and lo is not None and not pd.isna(lo):
            text += f" [{lo:.2f}, {hi:.2f}]"
        out.append(" ".join(filter(None, [text, _partial_n(row, metric)])))
    return out


def _is_cost(metric: str) -> bool:
    return metric in ("contexts", *COST_METRICS)  # what a version spends: its interval is not the point


def _partial_n(row: Any, metric: str) -> str:
    """``"n=3"`` where fewer rows than questions had a value for ``metric``, else ``""``."""
    import pandas as pd

    n, total = row.get(f"{metric}_n"), row.get("questions")
    return f"n={int(n)}" if n is not None and total is not None and not pd.isna(n) and int(n) < int(total) else ""


def shown_columns(board: pd.DataFrame, first: Sequence[str] = ("rank", "retriever", "judge", "questions")) -> list[str]:
    """What a printed leaderboard shows: ``first``, then contexts, scores, hit_rate@k for the board's cut-offs,
    own-k hit rate and MRR, latency, errors and vs_best."""
    matches = (CUTOFF_RE.match(str(c)) for c in board.columns)
    ks = sorted(int(m.group(2)) for m in matches if m and m.group(1) == "hit_rate")
    return [*first, "contexts", *TRIAD, "triad", "citation_faithfulness", "correctness",
            *(f"hit_rate@{k}" for k in ks), "hit_rate", "mrr",
            "latency_s", "errors", "vs_best"]


def display_frame(board: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The chosen columns as text, each metric with its interval (for printing and HTML)."""
    import pandas as pd

    cols = [c for c in columns if c in board.columns]
    return pd.DataFrame({c: interval_text(board, c) if f"{c}_lo" in board else board[c].fillna("")
                         for c in cols})


# Terminal headers: short, two lines at most, so that a board of 12 columns fits 100 characters.
SHORT = {"rank": "#", "context_relevance": "context\nrelev.", "groundedness": "ground-\nedness",
         "answer_relevance": "answer\nrelev.", "correctness": "correct-\nness", "hit_rate": "hit\nrate",
         "mrr": "MRR", "citation_faithfulness": "cita-\ntions", "latency_s": "latency\ns", "errors": "errors", "vs_best": "vs best", "questions": "ques-\ntions",
         "contexts": "con-\ntexts", "records": "records"}
TEXT_COLUMNS = ("retriever", "llm", "judge", "version", "kind")


def display(board: pd.DataFrame, columns: Sequence[str], width: int = 100) -> str:
    """The leaderboard as a table at most ``width`` characters wide: each score with "±" half its
    95% interval on the line below, settings shared by every row above the table, a footer."""
    import io
    import textwrap

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cols = [c for c in columns if c in board.columns and not board[c].isna().all()]
    shared = [c for c in cols if c in ("llm", "judge", "questions") and board[c].nunique(dropna=False) == 1]
    cols = [c for c in cols if c not in shared]
    cells = {c: [_cell(board, row, c) for _, row in board.iterrows()] for c in cols}
    widths = {c: max(len(line) for text in [_short_header(c), *cells[c]] for line in text.splitlines()) + 1
              for c in cols}
    for c in cols:  # a text column needs room for its longest word (a spec parameter stays whole)
        if c in TEXT_COLUMNS:
            widths[c] = min(max(len(w) for text in cells[c] for w in text.split()) + 1, 40)
    hidden = []
    for c in _drop_order(cols):  # what to leave out when the board would not fit
        if sum(widths[k] for k in cols if k not in hidden) <= width:
            break
        hidden.append(c)
    cols = [c for c in cols if c not in hidden]
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False, collapse_padding=True)
    for c in cols:
        if c in TEXT_COLUMNS:
            table.add_column(SHORT.get(c, c), overflow="fold", ratio=1, min_width=widths[c] - 1)
        else:
            table.add_column(_short_header(c), justify="right", no_wrap=True)
    for i in range(len(board)):
        table.add_row(*(Text(cells[c][i]) for c in cols))  # Text: "[...]" in a spec is not markup
    console = Console(width=width, highlight=False, soft_wrap=False, file=io.StringIO(), color_system=None)
    console.print(table)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    head = [f"{c}: {board[c].iloc[0]}" for c in shared]
    text = "\n".join(([" · ".join(head)] if head else []) + lines)
    key = board.attrs.get("ranked_by")
    ranked = ranked_by_text(key)
    notes = [f"{ranked[0].upper()}{ranked[1:]}. ± = half the 95% bootstrap interval; vs best = this version "
             "minus the best on the same questions (paired)."] if key and len(board) > 1 else []
    if hidden:
        notes.append(f"Not shown to fit {width} columns: {', '.join(hidden)}.")
    if notes:
        notes.append("Every column, with exact intervals: leaderboard.csv.")
        text += "\n" + textwrap.fill(" ".join(notes), width)
    return text


def _drop_order(columns: Sequence[str]) -> list[str]:
    """Columns a narrow board leaves out, first to last: counts, own-k MRR and hit rate, citation
    faithfulness, then the cut-offs the user asked for, from the smallest k."""
    cutoffs = sorted((c for c in columns if CUTOFF_RE.match(c)), key=lambda c: int(CUTOFF_RE.match(c).group(2)))
    return [*(c for c in ("contexts", "records", "mrr", "hit_rate", "citation_faithfulness") if c in columns), *cutoffs]


def _short_header(column: str) -> str:
    match = CUTOFF_RE.match(column)
    if match:
        return f"{'hit' if match.group(1) == 'hit_rate' else match.group(1).upper()}\n@{match.group(2)}"
    return SHORT.get(column, column.replace("_", "\n", 1))


def _cell(board: pd.DataFrame, row: Any, column: str) -> str:
    import pandas as pd

    value = row.get(column)
    if column in TEXT_COLUMNS:
        kind, bracket, params = str(value).partition("[")  # the kind on a line, parameters wrap at commas
        return f"{kind}\n{bracket}{params.replace(',', ', ')}" if bracket and len(str(value)) > 20 else str(value)
    if column == "vs_best":  # "-0.026 [-0.10, +0.05] within noise" -> two lines, no interval
        if value is None or pd.isna(value) or not str(value).strip():
            return ""
        mean, _, rest = str(value).partition(" ")
        return f"{mean}\n{rest.split('] ')[-1]}"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "n/a"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if column in ("rank", "questions", "errors", "records") or float(value).is_integer() and column == "contexts":
        return f"{int(value)}"
    cost = _is_cost(column)
    text = f"{value:.1f}" if column == "latency_s" else f"{value:.2f}" if cost else f"{value:.3f}"
    lo, hi = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    if not cost and lo is not None and not pd.isna(lo):
        text += f"\n±{(hi - lo) / 2:.2f}"
    return "\n".join(filter(None, [text, _partial_n(row, column)]))


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
