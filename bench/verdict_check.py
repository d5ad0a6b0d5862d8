"""Does the verdict hold against a person's reading? Judges and key-fact correctness vs human labels.

    .venv/bin/python bench/verdict_check.py RESULTS_DIR_OR_ROWS_JSON LABELS.jsonl [--write-template] [--rejudge]

RESULTS: the folder `rag eval` wrote (its rows.json) or the rows.json itself. LABELS: one JSON
object a line, ``{"question", "answer", "right": true|false, "note"}``: a person's reading of
that answer against the PDFs (``answer`` must be the exact answer text, so labels of another
run's answers are not applied by mistake). ``--write-template`` writes LABELS with every row of
the run and ``"right": null`` to fill in. ``--rejudge`` scores the stored answers' groundedness again
with this checkout's local judge first (about 10 s a row): a judge change measured on the same answers.

Prints, per version and over all rows: answers right by the person and by key facts, how many
right answers each metric scores >= 0.5, and how well each metric separates right from wrong
answers (AUC); then whether the leaderboard's winner answered best.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402,F401  (puts the checkout on sys.path)

import numpy as np  # noqa: E402

from rag.evaluation.judge_file import auc  # noqa: E402

METRICS = ("correctness", "groundedness", "answer_relevance", "context_relevance", "token_recall")


def load_rows(path: Path) -> dict:
    path = path / "rows.json" if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))


def load_labels(path: Path) -> dict:
    """A person's labels by (question, answer text): right True / False, or None where not filled in."""
    labels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            labels[(item["question"], item["answer"].strip())] = item["right"]
    return labels


def label_of(labels: dict, row: dict):
    """The label of a run's row (its exact answer), or None."""
    return labels.get((row["question"], (row.get("answer") or "").strip()))


def rejudge(rows: list[dict]) -> None:
    """Replace each row's groundedness with this checkout's local (probability) judge's."""
    from rag.config import Config
    from rag.evaluation.judges import JUDGES_VERSION
    from rag.evaluation.judges.probability import ProbabilityJudge

    judge = ProbabilityJudge.from_config(Config(), fetch=False)
    for i, row in enumerate(rows, 1):
        if row.get("answer") and row.get("groundedness") is not None:
            row["groundedness"] = judge.groundedness(row["contexts"], row["answer"], row["question"])[0]
        print(f"\rre-judged {i} of {len(rows)}", end="", file=sys.stderr, flush=True)
    print(f"\ngroundedness re-judged with JUDGES_VERSION {JUDGES_VERSION}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results")
    parser.add_argument("labels")
    parser.add_argument("--write-template", action="store_true")
    parser.add_argument("--rejudge", action="store_true", help="groundedness again, with this checkout's local judge")
    args = parser.parse_args(argv)
    run = load_rows(Path(args.results))
    rows = run["rows"]
    if args.rejudge:
        rejudge(rows)
    labels_path = Path(args.labels)
    if args.write_template:
        with labels_path.open("w", encoding="utf-8") as out:
            for r in rows:
                out.write(json.dumps({"retriever": r["retriever"], "question": r["question"], "answer": r["answer"],
                                      "right": None, "note": ""}, ensure_ascii=False) + "\n")
        print(f"wrote {len(rows)} rows to fill in: {labels_path}")
        return
    labels = load_labels(labels_path)
    labelled = [(r, label_of(labels, r)) for r in rows]
    missing = sum(v is None for _, v in labelled)
    labelled = [(r, bool(v)) for r, v in labelled if v is not None]
    print(f"{len(labelled)} of {len(rows)} rows labelled" + (f"; {missing} without a label (left out)" if missing else ""))

    groups: dict[str, list] = {}
    for r, right in labelled:
        groups.setdefault(r["retriever"], []).append((r, right))
    groups["all"] = labelled
    header = ["version", "n", "right", "right by key facts"] + [f"{m} >= 0.5 of right" for m in METRICS[:3]] \
        + ["groundedness < 0.5 of wrong"] + [f"AUC {m}" for m in METRICS]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, items in groups.items():
        right = [r for r, y in items if y]
        cells = [name, str(len(items)), str(len(right)),
                 str(sum((r.get("correctness") or 0) >= 0.5 for r, _ in items))]
        for m in METRICS[:3]:
            cells.append(f"{sum((r.get(m) or 0) >= 0.5 for r in right)}/{len(right)}")
        wrong = [r for r, y in items if not y]
        cells.append(f"{sum((r.get('groundedness') or 0) < 0.5 for r in wrong)}/{len(wrong)}")
        for m in METRICS:
            pairs = [(r.get(m), y) for r, y in items if r.get(m) is not None]
            ys = np.array([bool(y) for _, y in pairs])
            value = auc(np.array([float(s) for s, _ in pairs]), ys) if pairs and 0 < ys.sum() < len(ys) else None
            cells.append("-" if value is None else f"{value:.2f}")
        print(" | ".join(cells))
    board = run.get("leaderboard") or []
    if board:
        winner = board[0]["retriever"]
        right_by = {name: sum(y for _, y in items) for name, items in groups.items() if name != "all"}
        best = max(right_by.values())
        print(f"\nleaderboard winner: {winner} ({right_by.get(winner)} right); most right answers: "
              + ", ".join(f"{k} {v}" for k, v in sorted(right_by.items(), key=lambda kv: -kv[1]))
              + ("  -> winner within one answer of the best" if right_by.get(winner, 0) >= best - 1
                 else "  -> WRONG WINNER"))


if __name__ == "__main__":
    main()
