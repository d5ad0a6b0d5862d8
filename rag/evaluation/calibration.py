"""``rag judge calibrate``: fit the probability judge to a user's own labels, and report it honestly.

The probability judge scores ``sigmoid(bias + weights . features)`` per metric
(:mod:`rag.evaluation.judges.probability`) and says yes at 0.5. On a user's labels of one metric:

- with fewer than ``MIN_FOR_WEIGHTS`` labels only the threshold moves: the score threshold with
  the best balanced accuracy on the labels, folded into the bias (so 0.5 still decides, and every
  consumer of the scores, the verdict's disagreement flags included, sees the calibrated decision);
- with more, the weights too: a class-balanced logistic fit, pulled towards the shipped
  coefficients (L2) so that a few hundred labels refine them rather than replace them.

What is reported is agreement on held-out labels: ``FOLDS``-fold cross-validation, each fold scored
by a fit on the other folds, beside the shipped coefficients on the same rows. The final calibration
is fit on every label and never scored on them. It is kept in ``<storage>/judge_calibration.json``
(the n it was fit on, date, judge, model) and used whenever that storage folder is.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rag.errors import ConfigError, InputError

FILE = "judge_calibration.json"
JUDGE = "probability"
MIN_FOR_WEIGHTS = 40  # below this many labels, a fit of 3-7 weights follows noise: move the threshold only
MIN_LABELS = 10  # and at least this many, with MIN_PER_CLASS of each class, to calibrate at all
MIN_PER_CLASS = 3
FOLDS = 5
L2 = 1.0  # pull towards the shipped weights, per unit of class-balanced row weight summed to n
CALIBRATED_METRICS = ("groundedness", "context_relevance", "answer_relevance")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(z, -30, 30)))


def scores(coefficients: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The judge's score of each feature row under ``coefficients`` (bias, weights)."""
    return _sigmoid(coefficients["bias"] + x @ np.asarray(coefficients["weights"], dtype=float))


def best_threshold(score: np.ndarray, labels: np.ndarray) -> float:
    """The cut between two neighbouring scores with the best balanced accuracy (the middle one of ties)."""
    from rag.evaluation.judge_file import balanced_accuracy

    values = np.unique(score)
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = np.array([balanced_accuracy(score, labels, t) for t in cuts])
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(np.clip(cuts[best[len(best) // 2]], 0.01, 0.99))


def fit_threshold(x: np.ndarray, labels: np.ndarray, prior: dict[str, Any]) -> dict[str, Any]:
    """The prior coefficients with the bias moved so that 0.5 decides where the best threshold did."""
    threshold = best_threshold(scores(prior, x), labels)
    return {"bias": float(prior["bias"] - math.log(threshold / (1 - threshold))),
            "weights": [float(w) for w in prior["weights"]], "threshold": threshold, "fitted": "threshold"}


def fit_weights(x: np.ndarray, labels: np.ndarray, prior: dict[str, Any], l2: float = L2,
                steps: int = 50) -> dict[str, Any]:
    """Class-balanced logistic regression by Newton's method, with an L2 pull towards ``prior``."""
    y = labels.astype(float)
    # Each class weighs half: a corpus where most answers are grounded does not teach "always yes".
    row_weight = np.where(labels, 0.5 / max(labels.sum(), 1), 0.5 / max((~labels).sum(), 1)) * len(y)
    design = np.column_stack([np.ones(len(y)), x])
    start = np.concatenate([[prior["bias"]], np.asarray(prior["weights"], dtype=float)])
    penalty = np.full(len(start), l2)
    penalty[0] = 0.0  # the bias is free: it carries the corpus's own base rate of scores
    theta = start.copy()
    for _ in range(steps):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (row_weight * (p - y)) + penalty * (theta - start)
        hessian = (design * (row_weight * p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"bias": float(theta[0]), "weights": [float(w) for w in theta[1:]], "threshold": 0.5, "fitted": "weights"}


def fit(x: np.ndarray, labels: np.ndarray, prior: dict[str, Any]) -> dict[str, Any]:
    """Weights and bias with at least MIN_FOR_WEIGHTS labels, else the threshold only."""
    if len(labels) >= MIN_FOR_WEIGHTS:
        return fit_weights(x, labels, prior)
    return fit_threshold(x, labels, prior)


def folds(labels: np.ndarray, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """A fold number per row, each class spread evenly over the folds (stratified), shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=int)
    for cls in (False, True):
        where = np.flatnonzero(labels == cls)
        fold[rng.permutation(where)] = np.arange(len(where)) % k
    return fold


def cross_validated_scores(x: np.ndarray, labels: np.ndarray, prior: dict[str, Any], k: int = FOLDS,
                           seed: int = 0, fitter: Callable[..., dict[str, Any]] | None = None) -> np.ndarray:
    """Each row's score under a fit on the other folds: never on the rows it was fit on. The mode
    (threshold or weights) is that of a fit on all rows, so the estimate is of the calibration kept."""
    fitter = fitter or (fit_weights if len(labels) >= MIN_FOR_WEIGHTS else fit_threshold)
    fold = folds(labels, k, seed)
    out = np.empty(len(labels))
    for f in range(k):
        held = fold == f
        if held.any():
            out[held] = scores(fitter(x[~held], labels[~held], prior), x[held])
    return out


def check_labels(metric: str, labels: np.ndarray) -> str | None:
    """Why ``labels`` are too few to calibrate ``metric`` on, or None."""
    yes = int(labels.sum())
    if len(labels) < MIN_LABELS or min(yes, len(labels) - yes) < MIN_PER_CLASS:
        return (f"{metric}: {len(labels)} label(s), {yes} yes: need at least {MIN_LABELS} with {MIN_PER_CLASS} of "
                "each class (label more rows with `rag label`, or import some with `rag label --import FILE`)")
    return None


def calibrate_metric(metric: str, x: np.ndarray, labels: np.ndarray, prior: dict[str, Any],
                     fixed: Sequence[tuple[float, int]] = ()) -> dict[str, Any]:
    """Fit ``metric`` on all rows and measure it on held-out folds, beside the prior on the same rows.
    ``fixed``: (score, label) of labelled rows the judge decides without the model (no features);
    they count in both measurements with their fixed score."""
    from rag.evaluation.judge_file import agreement

    cv = cross_validated_scores(x, labels, prior)
    fixed_scores, fixed_labels = [s for s, _ in fixed], [int(l) for _, l in fixed]
    everything = [*labels.astype(int), *fixed_labels]
    before = agreement([*scores(prior, x), *fixed_scores], everything)
    after = agreement([*cv, *fixed_scores], everything)
    coefficients = fit(x, labels, prior)
    return {**coefficients, "n": int(len(labels) + len(fixed)), "n_fitted": int(len(labels)),
            "held_out": {"folds": FOLDS, "before": before, "after": after}}


# ---------------------------------------------------------------- features of the labelled rows

def features_of(judge: Any, metric: str, label: Any) -> dict[str, Any]:
    """The probability judge's raw measures of one label's row (one LLM check per claim or passage)."""
    if metric == "groundedness":
        return judge.groundedness_features(label.contexts, label.answer, label.question)
    if metric == "context_relevance":
        return judge.context_relevance_features(label.question, (label.contexts or [""])[0])
    return judge.answer_relevance_features(label.question, label.answer)


def labels_by_metric(labels: Sequence[Any]) -> tuple[dict[str, list[Any]], list[str]]:
    """The labels of each metric that has enough to calibrate, and why the others have not; raises
    InputError when none has (before any model loads)."""
    by_metric, skipped = {}, []
    for metric in CALIBRATED_METRICS:
        group = [l for l in labels if l.metric == metric]
        why = check_labels(metric, np.asarray([l.value for l in group], dtype=bool))
        if why:
            skipped.append(why)
        else:
            by_metric[metric] = group
    if not by_metric:
        raise need_labels(skipped)
    return by_metric, skipped


def calibrate(judge: Any, labels: Sequence[Any], shipped: dict[str, dict[str, Any]], names: dict[str, Sequence[str]],
              progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Per metric with enough labels, the calibration (:func:`calibrate_metric`); and why the others
    were left at the shipped coefficients. ``names``: each metric's feature names, in weight order."""
    by_metric, skipped = labels_by_metric(labels)
    total, done = sum(len(v) for v in by_metric.values()), 0
    fitted = {}
    for metric, group in by_metric.items():
        rows, fixed = [], []
        for label in group:
            f = features_of(judge, metric, label)
            done += 1
            if progress:
                progress(done, total)
            if "score" in f:  # decided without the model (empty context, an abstention): nothing to fit
                fixed.append((float(f["score"]), label.value))
            elif metric == "groundedness" and f.get("contradicted"):
                fixed.append((0.0, label.value))  # capped whatever the weights say: the cap decides
            else:
                rows.append(([float(f[n]) for n in names[metric]], label.value))
        x = np.asarray([r for r, _ in rows], dtype=float).reshape(len(rows), len(names[metric]))
        y = np.asarray([v for _, v in rows], dtype=bool)
        why = check_labels(f"{metric} (rows the model decides)", y)
        if why:
            skipped.append(why)
            continue
        fitted[metric] = calibrate_metric(metric, x, y, shipped[metric], fixed)
    return fitted, skipped


# ---------------------------------------------------------------- the file in the storage folder

def path_in(storage_dir: str | Path) -> Path:
    return Path(storage_dir) / FILE


def save(storage_dir: str | Path, model: str, fitted: dict[str, Any]) -> Path:
    path = path_in(storage_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"judge": JUDGE, "model": model, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "n": sum(m["n"] for m in fitted.values()), "metrics": fitted}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2))
    temporary.replace(path)  # never half a file where the judge reads it
    return path


def load(storage_dir: str | Path, model: str) -> dict[str, Any] | None:
    """The stored calibration for the probability judge with ``model``, or None (none, or another model's)."""
    path = path_in(storage_dir)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        metrics = document["metrics"]
        if document.get("judge") != JUDGE or document.get("model") != model:
            return None  # fit on another model's P(yes): its weights mean nothing for this one
        for values in metrics.values():
            float(values["bias"]), [float(w) for w in values["weights"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a judge calibration ({exc}); remove it with `rag judge calibrate --reset` "
                          "and calibrate again.") from None
    return document


def coefficients(storage_dir: str | Path, model: str, shipped: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """The shipped coefficients with the calibrated metrics replaced, or None without a calibration."""
    document = load(storage_dir, model)
    if document is None:
        return None
    out = dict(shipped)
    for metric, values in document["metrics"].items():
        if metric in out and len(values["weights"]) == len(out[metric]["weights"]):
            out[metric] = {"bias": float(values["bias"]), "weights": tuple(float(w) for w in values["weights"])}
    return out


def reset(storage_dir: str | Path) -> bool:
    """Remove the calibration; True when there was one."""
    path = path_in(storage_dir)
    if path.is_file():
        path.unlink()
        return True
    return False


def need_labels(skipped: Sequence[str]) -> InputError:
    return InputError("Nothing to calibrate: " + "; ".join(skipped) + ".")
