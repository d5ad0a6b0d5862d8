"""``rag judge METRIC FILE``: score labelled (or unlabelled) rows with a judge and measure agreement.

One JSON object per line:

- groundedness: ``{"context": "..."}`` or ``{"contexts": [...]}``, ``"answer"``
- context_relevance: ``"question"``, ``"context"``
- answer_relevance: ``"question"``, ``"answer"``

plus an optional ``"label"`` (0 or 1; 1 = grounded / relevant); a line whose ``"metric"`` names
another metric is passed over (``rag label --export`` writes every metric to one file). Scores come back in input order as
``{"score", "reason"}``; with labels, :func:`agreement` gives n, AUC, balanced accuracy and F1 at
the judge's threshold, Cohen's kappa with a bootstrap interval, and items per second. ``bench/judges.py`` uses the same functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rag.errors import InputError

FIELDS = {
    "groundedness": ("contexts", "answer"),
    "context_relevance": ("question", "context"),
    "answer_relevance": ("question", "answer"),
}


@dataclass
class JudgeRow:
    metric: str
    inputs: tuple[Any, Any]  # (contexts list, answer) or (question, context/answer)
    label: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. "kind" of an adversarial item


def load_rows(path: str | Path, metric: str) -> list[JudgeRow]:
    """Read ``path`` (JSONL) for ``metric``; a malformed line raises InputError naming the line."""
    if metric not in FIELDS:
        raise InputError(f"Unknown metric {metric!r}: choose one of {', '.join(FIELDS)}.")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file. Give a JSONL file with one object per line.")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {n}: invalid JSON ({exc.msg} at column {exc.colno}).") from None
        if isinstance(obj, dict) and obj.get("metric", metric) != metric:
            continue  # a `rag label --export` file holds every metric: each line names its own
        rows.append(row_from_object(obj, metric, f"{path}, line {n}"))
    if not rows:
        raise InputError(f"{path}: no rows found.")
    return rows


def row_from_object(obj: Any, metric: str, where: str) -> JudgeRow:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}.")
    first, second = FIELDS[metric]
    if first == "contexts":
        contexts = obj.get("contexts", [obj["context"]] if "context" in obj else None)
        if isinstance(contexts, str):
            contexts = [contexts]
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            raise InputError(f"{where}: needs \"context\" (a string) or \"contexts\" (a list of strings).")
        a = contexts
    else:
        a = _text_field(obj, first, where)
    b = _text_field(obj, second, where)
    label = obj.get("label")
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        raise InputError(f"{where}: \"label\" must be 0 or 1, got {label!r}.")
    extra = {k: v for k, v in obj.items() if k not in ("context", "contexts", first, second, "label", "metric")}
    return JudgeRow(metric=metric, inputs=(a, b), label=label, extra=extra)


def _text_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InputError(f"{where}: needs \"{key}\" (a string).")
    return value


def score_rows(judge: Any, rows: Sequence[JudgeRow], progress: Callable[[int], None] | None = None
               ) -> tuple[list[dict[str, Any]], float]:
    """``[{"score", "reason"}]`` in input order, and the seconds the judge took."""
    out = []
    start = time.perf_counter()
    for i, row in enumerate(rows):
        method = getattr(judge, row.metric)
        result = method(*row.inputs)
        score, reason = result if isinstance(result, tuple) else (result, "")
        out.append({"score": float(score), "reason": str(reason)})
        if progress:
            progress(i + 1)
    return out, time.perf_counter() - start


# ---------------------------------------------------------------- agreement with labels

def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    neg = np.sort(scores[~labels])
    below = np.searchsorted(neg, scores[labels], side="left")
    ties = np.searchsorted(neg, scores[labels], side="right") - below
    return float((below + 0.5 * ties).sum() / (labels.sum() * (~labels).sum()))


def balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    return float((pred[labels].mean() + (~pred[~labels]).mean()) / 2)


def f1(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    tp = float((pred & labels).sum())
    return 2 * tp / (pred.sum() + labels.sum()) if tp else 0.0


def cohen_kappa(predicted: np.ndarray, labels: np.ndarray) -> float | None:
    """Agreement of two yes/no raters beyond chance: 1 same everywhere, 0 as by chance; None when
    chance alone agrees fully (both say one class only)."""
    observed = float((predicted == labels).mean())
    p_yes, l_yes = float(predicted.mean()), float(labels.mean())
    by_chance = p_yes * l_yes + (1 - p_yes) * (1 - l_yes)
    return None if by_chance >= 1 else (observed - by_chance) / (1 - by_chance)


def kappa_interval(predicted: np.ndarray, labels: np.ndarray, draws: int = 2000, seed: int = 0
                   ) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of :func:`cohen_kappa` (rows drawn with replacement)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(labels), size=(draws, len(labels)))
    values = [k for k in (cohen_kappa(predicted[i], labels[i]) for i in picks) if k is not None]
    if not values:
        return None, None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def best_balanced_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """The best any threshold reaches on these rows: optimistic, for reference only."""
    return max(balanced_accuracy(scores, labels, t) for t in np.unique(scores))


def agreement(scores: Iterable[float], labels: Iterable[int | None], threshold: float = 0.5,
              seconds: float | None = None) -> dict[str, Any] | None:
    """n, AUC, bAcc, F1 and Cohen's kappa with its interval (at ``threshold``), best bAcc and items/s
    over the labelled rows; None without both classes."""
    pairs = [(s, l) for s, l in zip(scores, labels) if l is not None]
    s = np.asarray([p[0] for p in pairs], dtype=float)
    y = np.asarray([p[1] for p in pairs], dtype=bool)
    if not len(y) or y.all() or not y.any():
        return None
    kappa_lo, kappa_hi = kappa_interval(s >= threshold, y)
    return {"n": len(y), "auc": auc(s, y), "balanced_accuracy": balanced_accuracy(s, y, threshold),
            "f1": f1(s, y, threshold), "kappa": cohen_kappa(s >= threshold, y), "kappa_lo": kappa_lo,
            "kappa_hi": kappa_hi, "threshold": threshold, "best_balanced_accuracy": best_balanced_accuracy(s, y),
            "items_per_s": (len(y) / seconds) if seconds else None}
