"""A CI gate: minimum scores an evaluation must reach, and a verdict a person can read.

Rule: a version passes a check when the **mean** of the metric over its scored questions is at
least the threshold. The 95% interval is printed beside it, so a pass that rests on a handful of
questions is visible, but it does not decide. A metric with no values (not scored, or the
question set has no references for it) fails: a gate must never pass on nothing. With several
versions, every version must pass.

    results = app.evaluate(...)
    verdict = results.gate({"groundedness": 0.7, "hit_rate@5": 0.8})
    assert verdict.passed, verdict
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from rag.errors import ConfigError
from rag.evaluation import TRIAD

GATE_RE = re.compile(r"^\s*(?P<metric>[a-z_]+(?:@\d+)?)\s*=\s*(?P<value>[-+0-9.eE]+)\s*$")
KNOWN = (*TRIAD, "triad", "citation_faithfulness", "correctness", "token_recall", "token_f1", "answer_cosine", "hit_rate", "mrr", "ndcg")
CUTOFF_RE = re.compile(r"^(hit_rate|ndcg)@(\d+)$")


@dataclass(frozen=True)
class Check:
    version: str
    metric: str
    threshold: float
    n: int
    mean: float | None
    lo: float | None
    hi: float | None

    @property
    def passed(self) -> bool:
        return self.mean is not None and self.mean >= self.threshold

    def __str__(self) -> str:
        if self.mean is None:
            return f"FAIL {self.metric} >= {self.threshold:g}: no values for {self.version}"
        interval = "" if self.lo is None else f" [{self.lo:.2f}, {self.hi:.2f}]"
        word = "pass" if self.passed else "FAIL"
        return f"{word} {self.metric} >= {self.threshold:g}: mean {self.mean:.3f}{interval} n={self.n}  {self.version}"


@dataclass
class GateResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        failed = len(self.failures)
        head = ("gate passed" if self.passed else f"gate FAILED ({failed} of {len(self.checks)} checks)")
        return "\n".join([f"{head}: every version's mean must reach each threshold", *map(str, self.checks)])


def parse_thresholds(items: dict[str, float] | Sequence[str] | None) -> dict[str, float]:
    """``["groundedness=0.7", "hit_rate@5=0.8"]`` (or a dict) -> ``{metric: threshold}``, validated."""
    if not items:
        return {}
    pairs: list[tuple[str, Any]] = []
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        for item in items:
            match = GATE_RE.match(str(item))
            if not match:
                raise ConfigError(f"--fail-under {item!r}: write METRIC=VALUE, e.g. groundedness=0.7 "
                                  "or hit_rate@5=0.8.")
            pairs.append((match["metric"], match["value"]))
    out = {}
    for metric, value in pairs:
        if metric not in KNOWN and not CUTOFF_RE.match(metric):
            raise ConfigError(f"--fail-under {metric}: unknown metric; use one of {', '.join(KNOWN)}, "
                              "hit_rate@K or ndcg@K.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--fail-under {metric}={value!r}: the threshold must be a number.") from None
        if math.isnan(number):
            raise ConfigError(f"--fail-under {metric}: the threshold must be a number.")
        out[metric] = number
    return out


def gate_cutoffs(thresholds: dict[str, float]) -> list[int]:
    """The retrieval cut-offs the gate needs (``hit_rate@5`` -> 5)."""
    return [int(m.group(2)) for m in map(CUTOFF_RE.match, thresholds) if m]


def check(board: Any, fail_under: dict[str, float] | Sequence[str]) -> GateResult:
    """Every (version, metric) of a leaderboard against its threshold."""
    import pandas as pd

    thresholds = parse_thresholds(fail_under)
    if not thresholds:
        raise ConfigError("The gate has no thresholds: give e.g. {\"groundedness\": 0.7}.")
    checks = []
    for _, row in board.iterrows():
        for metric, threshold in thresholds.items():
            mean = row.get(metric)
            mean = None if mean is None or pd.isna(mean) else float(mean)
            lo, hi, n = (row.get(f"{metric}_{s}") for s in ("lo", "hi", "n"))
            checks.append(Check(str(row.get("retriever") or row["version"]), metric, threshold,
                                0 if n is None or pd.isna(n) else int(n), mean,
                                None if lo is None or pd.isna(lo) else float(lo),
                                None if hi is None or pd.isna(hi) else float(hi)))
    return GateResult(checks)
