"""Does `rag judge calibrate` help on a corpus's own labels? Held-out agreement before and after.

    nice .venv/bin/python bench/label_calibration.py [--n 120] [--seed 0] [--threads 1]

Two labelled corpora stand in for a user's labels, each from rows the shipped coefficients were
NOT fit on (bench/calibrate_judge.py fits on a seeded sample; those groups are left out here):

- HotpotQA dev (context relevance): per question its 2 supporting paragraphs (relevant) and 2
  distractors (not), paragraphs titled as a retrieved chunk would be;
- BEGIN dev, Wizard of Wikipedia (groundedness): "Fully attributable" responses against the others.

The probability judge's features are computed once per row (one LLM check per passage or claim).
Then, as `rag judge calibrate` does (rag.evaluation.calibration), 5-fold cross-validation: each
fold is scored by a calibration fit on the other four, and compared with the shipped coefficients
on the same rows. No row is ever scored by a fit that saw it. Printed: a table per corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402,F401  (puts the checkout on sys.path)

import numpy as np  # noqa: E402

import calibrate_judge as cj  # noqa: E402
from rag.evaluation import calibration  # noqa: E402
from rag.evaluation.judge_file import agreement  # noqa: E402
from rag.evaluation.judges import probability as pj  # noqa: E402

SHIPPED_FIT = {"hotpot": 56, "begin": 100}  # how many rows of each the shipped coefficients were fit on


def unseen(items: list, dataset: str, seed: int, n: int) -> list:
    """``n`` rows of whole groups that the shipped fit's sample did not contain."""
    seen = {it.group for it in cj.sample(items, SHIPPED_FIT[dataset], seed)}
    rest = [it for it in items if it.group not in seen]
    return cj.sample(rest, n, seed + 1)


def features(judge: pj.ProbabilityJudge, item) -> dict | None:
    if item.metric == "context_relevance":
        return judge.context_relevance_features(*item.args)
    f = judge.groundedness_features(*item.args)
    return None if "score" in f or f.get("contradicted") else f  # decided by rules: nothing to calibrate


def run(judge: pj.ProbabilityJudge, dataset: str, items: list) -> dict:
    metric = items[0].metric
    names = pj.FEATURES[metric]
    rows, labels, fixed = [], [], 0
    started, cpu = time.perf_counter(), time.process_time()
    for i, item in enumerate(items, 1):
        f = features(judge, item)
        if f is None:
            fixed += 1
        else:
            rows.append([float(f[k]) for k in names])
            labels.append(item.label)
        if i % 20 == 0:
            cj.log(f"{dataset}: {i} of {len(items)}")
    x, y = np.asarray(rows, dtype=float), np.asarray(labels, dtype=bool)
    shipped = pj.COEFFICIENTS[metric]
    before = agreement(calibration.scores(shipped, x), y.astype(int))
    after = agreement(calibration.cross_validated_scores(x, y, shipped), y.astype(int))
    kept = calibration.fit(x, y, shipped)
    return {"dataset": dataset, "metric": metric, "n": len(y), "fixed": fixed, "yes": int(y.sum()),
            "before": before, "after": after, "mode": kept["fitted"],
            "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=120, help="rows per corpus (whole groups)")
    parser.add_argument("--seed", type=int, default=0, help="the seed bench/calibrate_judge.py fit with")
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--only", default="hotpot,begin")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    base = Path(args.datasets)
    loaders = {"hotpot": lambda: cj.load_hotpot(base, args.seed), "begin": lambda: cj.load_begin(base)}
    judge = cj.make_judge(pj.DEFAULT_MODEL, args.threads)
    results = []
    for dataset in [d for d in args.only.split(",") if d]:
        items = unseen(loaders[dataset](), dataset, args.seed, args.n)
        cj.log(f"{dataset}: {len(items)} rows the shipped fit never saw")
        results.append(run(judge, dataset, items))
    print("| corpus (metric) | rows (yes) | calibration | balanced accuracy shipped -> calibrated | AUC | "
          "kappa [95% interval] | judge wall / CPU s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        b, a = r["before"], r["after"]
        print(f"| {r['dataset']} ({r['metric']}) | {r['n']} ({r['yes']}) | {r['mode']} | "
              f"{b['balanced_accuracy']:.3f} -> {a['balanced_accuracy']:.3f} | {b['auc']:.3f} -> {a['auc']:.3f} | "
              f"{b['kappa']:.2f} [{b['kappa_lo']:.2f}, {b['kappa_hi']:.2f}] -> {a['kappa']:.2f} "
              f"[{a['kappa_lo']:.2f}, {a['kappa_hi']:.2f}] | {r['wall_s']:.0f} / {r['cpu_s']:.0f} |")
    print("\nCalibrated = 5-fold cross-validated (each fold scored by a fit on the other four); "
          "rows decided by rules (abstentions, contradicted numbers) are left out of both.")


if __name__ == "__main__":
    main()
