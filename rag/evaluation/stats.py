"""How sure a leaderboard is: bootstrap intervals per version and paired differences between versions.

- :func:`estimate`: n, mean and a 95% percentile-bootstrap interval of one metric's values.
  Missing values (failed or unscored rows, questions without references) are left out and
  ``n`` says how many remained; fewer than two values give no interval.
- :func:`paired`: the mean difference A - B over the questions both versions scored, with its
  bootstrap interval (questions resampled together, so question difficulty cancels out).
  A difference whose interval contains 0 is *within noise*; with fewer than ``MIN_PAIRED``
  shared questions none is called.

Resampling is seeded: the same rows always give the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0
# Below this many paired questions no difference is called: the percentile bootstrap excludes 0
# whenever every difference has the same sign, which happens by chance with probability 2 * 0.5**n
# (0.5 for 2 questions, 0.06 for 5, 0.03 for 6, the first below 1 - LEVEL).
MIN_PAIRED = 6


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float | None
    lo: float | None
    hi: float | None

    def __str__(self) -> str:
        if self.mean is None:
            return "n/a"
        if self.lo is None:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} [{self.lo:.2f}, {self.hi:.2f}]"


@dataclass(frozen=True)
class Difference(Estimate):
    """Mean of A - B over ``n`` shared questions."""

    @property
    def _interval_has_zero(self) -> bool:
        return self.lo is None or self.lo <= 0.0 <= self.hi

    @property
    def within_noise(self) -> bool:
        """True when the interval contains 0, or there is no interval, or too few questions to call it."""
        return self.n < MIN_PAIRED or self._interval_has_zero

    @property
    def verdict(self) -> str:
        if self.mean is None:
            return "no shared questions"
        if self.n < MIN_PAIRED and not self._interval_has_zero:
            return f"too few questions (n={self.n})"
        if self.within_noise:
            return "within noise"
        return "better" if self.mean > 0 else "worse"

    def __str__(self) -> str:
        if self.mean is None:
            return "n/a"
        interval = "" if self.lo is None else f" [{self.lo:+.2f}, {self.hi:+.2f}]"
        mean = 0.0 if abs(self.mean) < 5e-4 else self.mean  # no "-0.000"
        return f"{mean:+.3f}{interval} {self.verdict}"


def _clean(values: Iterable[Any]) -> np.ndarray:
    array = np.asarray([_float(v) for v in values], dtype=float)
    return array[~np.isnan(array)]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _bootstrap(values: np.ndarray, level: float, resamples: int, seed: int) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def estimate(values: Iterable[Any], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED) -> Estimate:
    """n, mean and percentile-bootstrap interval of the non-missing ``values``."""
    kept = _clean(values)
    if not len(kept):
        return Estimate(0, None, None, None)
    lo, hi = _bootstrap(kept, level, resamples, seed)
    return Estimate(len(kept), float(kept.mean()), lo, hi)


def paired(a: dict[Any, Any], b: dict[Any, Any], level: float = LEVEL, resamples: int = RESAMPLES,
           seed: int = SEED) -> Difference:
    """Mean of ``a[q] - b[q]`` over the keys both score (non-missing), with its bootstrap interval."""
    keys = [k for k in a if k in b]
    diffs = _clean(_float(a[k]) - _float(b[k]) for k in keys)
    if not len(diffs):
        return Difference(0, None, None, None)
    lo, hi = _bootstrap(diffs, level, resamples, seed)
    return Difference(len(diffs), float(diffs.mean()), lo, hi)


# ---------------------------------------------------------------- on result rows

def question_keys(rows: pd.DataFrame) -> list[tuple[str, int]]:
    """A key per row that pairs the same question across versions: (text, occurrence within its version)."""
    seen: dict[tuple[Any, str], int] = {}
    keys = []
    questions = rows["question"] if "question" in rows else [""] * len(rows)  # no text: pair by position
    for version, question in zip(rows["version"], questions):
        n = seen.get((version, question), 0)
        seen[(version, question)] = n + 1
        keys.append((str(question), n))
    return keys


def per_question(rows: pd.DataFrame, version: str, metric: str) -> dict[tuple[str, int], Any]:
    """``{question key: value}`` of one version's metric."""
    if metric not in rows:
        return {}
    keys = question_keys(rows)
    mask = (rows["version"] == version).tolist()
    return {k: v for k, v, keep in zip(keys, rows[metric], mask) if keep}


def summarize(rows: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One line per (version, metric): n, mean, lo, hi. Rows with an ``error`` are left out."""
    import pandas as pd

    ok = rows[rows["error"].isna()] if "error" in rows else rows
    out = []
    for version in rows["version"].drop_duplicates():
        group = ok[ok["version"] == version]
        for metric in metrics:
            if metric in group:
                e = estimate(group[metric])
                out.append({"version": version, "metric": metric, "n": e.n, "mean": e.mean, "lo": e.lo, "hi": e.hi})
    return pd.DataFrame(out, columns=["version", "metric", "n", "mean", "lo", "hi"])


def compare(rows: pd.DataFrame, a: str, b: str, metric: str) -> Difference:
    """Paired difference of versions ``a`` - ``b`` on ``metric`` over the questions both scored."""
    ok = rows[rows["error"].isna()] if "error" in rows else rows
    return paired(per_question(ok, a, metric), per_question(ok, b, metric))
