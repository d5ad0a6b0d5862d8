"""Agreement of the RAG-triad judges with labels: human-labelled dev files and our adversarial sets.

    .venv/bin/python bench/judges.py [--datasets DIR] [--judge NAME ...] [--markdown] [--limit N]

Groundedness: BEGIN dev (Wizard of Wikipedia), knowledge = context, response = answer,
"Fully attributable" = positive, "Generic" left out; and bench/judge_sets/groundedness_adversarial.jsonl
(swapped numbers/entities, negation flips, recombinations vs faithful paraphrases). Context relevance:
MS MARCO query/passage pairs (negatives are mined hard negatives), HotpotQA dev paragraphs (supporting
vs distractor paragraphs of the same question), and bench/judge_sets/context_relevance_adversarial.jsonl.

Per judge and data set: n, AUC, balanced accuracy and F1 at the judge's own threshold, the best
balanced accuracy any threshold reaches on these rows (optimistic, for reference only), and items
per second. Scoring and metrics are those of `rag judge` (rag.evaluation.judge_file).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402  (puts the checkout on sys.path)

from rag.evaluation.judge_file import JudgeRow, agreement, load_rows, score_rows  # noqa: E402

BEGIN_FILE = "begin_dev_wow.tsv"
MSMARCO_FILE = "ms_marco_context_relevance.csv"
HOTPOT_FILE = "dev_questions.jsonl"
ADVERSARIAL = ROOT / "bench" / "judge_sets"


def datasets_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets")
    if not (base / "judges" / BEGIN_FILE).is_file():
        sys.exit(f"judges/{BEGIN_FILE} not found in {base}: pass --datasets DIR or set RAG_DATASETS.")
    return base


def load_begin(base: Path) -> list[JudgeRow]:
    csv.field_size_limit(sys.maxsize)
    with open(base / "judges" / BEGIN_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [JudgeRow("groundedness", ([r["knowledge"]], r["response"]), int(r["begin_label"] == "Fully attributable"))
            for r in rows if r["begin_label"] != "Generic"]


def load_msmarco(base: Path) -> list[JudgeRow]:
    with open(base / "judges" / MSMARCO_FILE, newline="", encoding="utf-8") as f:
        return [JudgeRow("context_relevance", (r["query"], r["expected_response"]), int(float(r["expected_score"]) >= 0.5))
                for r in csv.DictReader(f)]


def load_hotpot(base: Path, questions: int = 60, per_question: int = 4) -> list[JudgeRow]:
    """Supporting vs distractor paragraphs of the same question: 2 of each for the first ``questions``."""
    rows = []
    with open(base / "hotpotqa" / HOTPOT_FILE, encoding="utf-8") as f:
        for line in list(f)[:questions]:
            item = json.loads(line)
            question = item.get("question_text") or item.get("question")
            sup = [c for c in item["contexts"] if c.get("is_supporting")][: per_question // 2]
            dis = [c for c in item["contexts"] if not c.get("is_supporting")][: per_question // 2]
            rows += [JudgeRow("context_relevance", (question, f"{c['title']}. {c['paragraph_text']}"),
                              int(bool(c.get("is_supporting")))) for c in sup + dis]
    return rows


def datasets(base: Path) -> dict[str, list[JudgeRow]]:
    return {
        "groundedness: BEGIN dev": load_begin(base),
        "groundedness: adversarial": load_rows(ADVERSARIAL / "groundedness_adversarial.jsonl", "groundedness"),
        "context relevance: MS MARCO": load_msmarco(base),
        "context relevance: HotpotQA dev": load_hotpot(base),
        "context relevance: adversarial": load_rows(ADVERSARIAL / "context_relevance_adversarial.jsonl",
                                                    "context_relevance"),
    }


# ---------------------------------------------------------------- judges

class TokenPrecision:
    """Baseline: share of the answer's tokens that occur in the context (DESIGN reference)."""

    name = "baseline: token precision"
    threshold = 0.5

    def groundedness(self, contexts: list[str], answer: str) -> float:
        known = set(re.findall(r"\w+", " ".join(contexts).lower()))
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


def judges(names: list[str]) -> list:
    from rag import Config
    from rag.embedding import judge_embedder
    from rag.evaluation.judges import make_judge

    config = Config()
    embed = judge_embedder(config)
    embed(["warm-up"])  # keep model start-up out of the timings
    out = [TokenPrecision(), Cosine(embed)]
    for name in names:
        judge = make_judge(config, name, embed)
        judge.name = name
        out.append(judge)
    return out


def table(rows: list[dict], markdown: bool) -> str:
    cols = ["judge", "data", "n", "AUC", "bAcc", "F1", "best bAcc", "items/s"]
    cells = [[str(r[c]) if not isinstance(r[c], float) else (f"{r[c]:.0f}" if c == "items/s" else f"{r[c]:.3f}")
              for c in cols] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda row: "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help="folder holding judges/ and hotpotqa/ (default ../shared/datasets)")
    parser.add_argument("--judge", action="append", help="judge names (repeatable; default: lexical)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--limit", type=int, help="use only the first N rows of each data set (quick check)")
    args = parser.parse_args(argv)

    # Every other row under --limit, so both labels of the sorted adversarial sets are kept.
    data = {name: (rows[:: max(len(rows) // args.limit, 1)][: args.limit] if args.limit else rows)
            for name, rows in datasets(datasets_dir(args.datasets)).items()}
    rows = []
    for judge in judges(args.judge or ["lexical"]):
        for name, items in data.items():
            metric = items[0].metric
            if not hasattr(judge, metric):
                continue
            scored, seconds = score_rows(judge, items)
            result = agreement([s["score"] for s in scored], [r.label for r in items],
                               float(getattr(judge, "threshold", getattr(judge, "THRESHOLD", 0.5))), seconds)
            if result is None:  # one class only (e.g. a small --limit)
                continue
            rows.append({"judge": getattr(judge, "name", type(judge).__name__), "data": name, "n": result["n"],
                         "AUC": result["auc"], "bAcc": result["balanced_accuracy"], "F1": result["f1"],
                         "best bAcc": result["best_balanced_accuracy"], "items/s": result["items_per_s"]})
    print(table(rows, args.markdown))
    print("\nbAcc and F1 at each judge's own threshold; best bAcc = best threshold chosen on these rows "
          "(optimistic). Baselines use a 0.5 threshold.")


if __name__ == "__main__":
    main()
