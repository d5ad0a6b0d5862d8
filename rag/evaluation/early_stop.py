"""Stop answering with a version once it is clearly worse than the leader.

Versions answer the questions in interleaved order (question 1 with every version, then question
2, ...), so after every question all running versions have answered the same questions. At a few
*looks* (after 4, 8, 16, ... questions, and after the last) each running version is compared with
the leader (the best mean so far) on the questions both answered, by a sign test on the questions
where their scores differ: a version that loses on so many of them that chance is implausible is
stopped, and answers nothing more.

Looking again and again at data that keeps coming raises the chance of a false alarm, and so
does picking the leader from the data. Both are paid for in advance: the significance level is
split evenly over every look and every ordered pair of versions (Bonferroni), so the chance of
stopping any version that is in truth as good as another stays below ``alpha`` for the whole run.
The price is that few questions stop nothing: with 3 versions and 12 questions a version is
stopped only when it loses on 9 questions where it differs from the leader and wins on none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

ALPHA = 0.05
FIRST_LOOK = 4


@dataclass(frozen=True)
class Stop:
    """One stopped version and the evidence that stopped it."""

    version: str
    after: int  # questions it answered
    leader: str
    worse: int  # questions where the leader scored higher
    better: int  # questions where this version scored higher
    p_value: float
    threshold: float  # the level this look had (alpha split over looks and pairs)

    def __str__(self) -> str:
        return (f"{_short(self.version)}: stopped after {self.after} questions, worse than {_short(self.leader)} "
                f"on {self.worse} "
                f"of {self.worse + self.better} questions where they differ (sign test p={self.p_value:.4f} "
                f"<= {self.threshold:.4f}, the level left after correcting for every look and pair)")


def looks(total: int, first: int = FIRST_LOOK) -> list[int]:
    """After how many questions the versions are compared: first, 2*first, 4*first, ... and the last."""
    if total < 1:
        return []
    out, n = [], max(1, first)
    while n < total:
        out.append(n)
        n *= 2
    return out + [total]


def sign_test(worse: int, better: int) -> float:
    """One-sided p-value of losing ``worse`` of ``worse + better`` differing questions by chance."""
    n = worse + better
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2 ** n


@dataclass
class EarlyStopping:
    """Scores per version and question as they come; :meth:`check` after each question says whom to stop.

    A question a version failed on (no score) counts as 0 for it: a failure is not a reason to keep going.
    """

    versions: list[str]
    total: int
    alpha: float = ALPHA
    first_look: int = FIRST_LOOK
    scores: dict[str, list[float]] = field(default_factory=dict)
    stopped: list[Stop] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = {v: [] for v in self.versions}
        self._looks = looks(self.total, self.first_look)
        pairs = max(1, len(self.versions) * (len(self.versions) - 1))
        self.threshold = self.alpha / (max(1, len(self._looks)) * pairs)

    @property
    def running(self) -> list[str]:
        out = {s.version for s in self.stopped}
        return [v for v in self.versions if v not in out]

    def add(self, version: str, score: float | None) -> None:
        self.scores[version].append(0.0 if score is None or math.isnan(score) else float(score))

    def check(self) -> list[Stop]:
        """At a look, stop every running version the sign test puts below the leader; the new stops."""
        running = self.running
        answered = {len(self.scores[v]) for v in running}
        if len(running) < 2 or len(answered) != 1:
            return []
        n = answered.pop()
        if n not in self._looks:
            return []
        leader = max(running, key=lambda v: (sum(self.scores[v]), -running.index(v)))
        new = []
        for version in running:
            if version == leader:
                continue
            pairs = list(zip(self.scores[leader], self.scores[version]))
            worse = sum(a > b for a, b in pairs)
            better = sum(a < b for a, b in pairs)
            p = sign_test(worse, better)
            if p <= self.threshold:
                new.append(Stop(version, n, leader, worse, better, p, self.threshold))
        self.stopped.extend(new)
        return new

    def summary(self) -> str:
        """What was stopped and why, and that the rest are within noise of each other at this many questions."""
        lines = [f"early stopping ({self.alpha:g} over {len(self._looks)} looks and every pair of versions):"]
        lines += [f"  {stop}" for stop in self.stopped] or ["  no version stopped"]
        running = self.running
        if len(running) > 1:
            lines.append("  not stopped, no version clearly worse than the leader: "
                         + ", ".join(_short(v) for v in running))
        return "\n".join(lines)


def _short(version: str) -> str:
    """The retriever part of a version name (the generator and judge are the same for every version of a run)."""
    from rag.evaluation.ranking import parse_version

    return parse_version(version)["retriever"]


def stopped_versions(stops: Iterable[Stop]) -> dict[str, int]:
    """version -> questions it answered before it was stopped."""
    return {s.version: s.after for s in stops}


def rank_stopped_last(board: Any, stops: Iterable[Stop]) -> Any:
    """The leaderboard with stopped versions after the others (their means are over fewer, earlier
    questions, so they are not comparable with the rest), ranks renumbered, order otherwise kept."""
    stopped = stopped_versions(stops)
    if not stopped or board.empty:
        return board
    keep_attrs = dict(board.attrs)
    order = sorted(range(len(board)), key=lambda i: board["version"].iloc[i] in stopped)
    out = board.iloc[order].reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    out["stopped_after"] = [stopped.get(v) for v in out["version"]]
    out.attrs.update(keep_attrs)
    return out
