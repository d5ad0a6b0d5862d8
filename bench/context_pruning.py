"""Context pruning on HotpotQA: how much evidence survives each token budget, and how many tokens it saves.

    .venv/bin/python bench/context_pruning.py [--questions 300] [--contexts 4] [--budgets 150,250,400,600]

For each question of ``hotpotqa/dev_questions.jsonl`` (``../shared/datasets``, ``$RAG_DATASETS``
or ``--data``), the contexts are its two supporting paragraphs and the first distractors, up to
``--contexts`` (4 is what the basic retriever passes), in the dataset's order. They go through
``rag.retrieval.prune.ContextPruner`` (the index's default embedding model) at each budget;
questions whose answer span is yes/no or appears in no context are left out. Columns:

* ``answer kept``: share of questions whose pruned contexts still contain the answer span;
* ``both gold``: share whose two supporting paragraphs both keep at least one unit (HotpotQA
  needs both hops);
* ``tokens``: mean context tokens (about: characters / 4), and the share of the unpruned;
* ``ms/q``: wall time of pruning per question, embeddings cached across budgets as they are
  across versions in an evaluation (the first budget pays for them).

The answer-accuracy side of the choice (the sample's key facts, with the generator) is measured by
``rag eval`` with ``-r kind:context_budget=N`` versions; see the README.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state, write_results  # noqa: E402


def load(path: Path, limit: int, contexts: int) -> list[dict]:
    out = []
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            spans = [s for a in row["answers_objects"] for s in a.get("spans", [])]
            if not spans or spans[0].strip().lower() in ("yes", "no"):
                continue
            gold = [c for c in row["contexts"] if c["is_supporting"]]
            others = [c for c in row["contexts"] if not c["is_supporting"]]
            chosen = {c["id"] for c in gold + others[: max(contexts - len(gold), 0)]}
            picked = [c for c in row["contexts"] if c["id"] in chosen]
            answer = spans[0].strip()
            if not any(answer.lower() in c["paragraph_text"].lower() for c in picked):
                continue
            out.append({"question": row["question_text"], "answer": answer,
                        "contexts": [(c["paragraph_text"], c["is_supporting"]) for c in picked]})
            if len(out) == limit:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--contexts", type=int, default=4, help="contexts per question (2 gold + distractors)")
    parser.add_argument("--budgets", default="150,250,400,600")
    parser.add_argument("--data", help="dev_questions.jsonl (default ../shared/datasets/hotpotqa/dev_questions.jsonl)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "context_pruning.json"))
    args = parser.parse_args()

    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rag.config import Config
    from rag.retrieval.prune import ContextPruner, approx_tokens

    base = Path(os.environ.get("RAG_DATASETS") or ROOT.parent / "shared" / "datasets")
    path = Path(args.data) if args.data else base / "hotpotqa" / "dev_questions.jsonl"
    if not path.is_file():
        sys.exit(f"No {path}: pass --data FILE or set RAG_DATASETS to the folder holding hotpotqa/.")
    questions = load(path, args.questions, args.contexts)
    log(f"{len(questions)} questions, {args.contexts} contexts each, from {path}")
    config = Config()
    rows = []
    full_tokens = [sum(approx_tokens(t) for t, _ in q["contexts"]) for q in questions]
    for budget in [int(b) for b in args.budgets.split(",")]:
        pruner = ContextPruner(budget=budget, config=config)
        kept_answer = both_gold = 0
        tokens, seconds = [], []
        for q in questions:
            nodes = [NodeWithScore(node=TextNode(text=t, metadata={"gold": gold}), score=1.0) for t, gold in q["contexts"]]
            start = time.perf_counter()
            pruned = pruner.postprocess_nodes(nodes, query_bundle=QueryBundle(q["question"]))
            seconds.append(time.perf_counter() - start)
            texts = [n.node.get_content() for n in pruned]
            kept_answer += any(q["answer"].lower() in t.lower() for t in texts)
            both_gold += sum(1 for n in pruned if n.node.metadata["gold"]) == 2
            tokens.append(sum(approx_tokens(t) for t in texts))
        n = len(questions)
        rows.append({"budget": budget, "answer_kept": kept_answer / n, "both_gold": both_gold / n,
                     "tokens": statistics.mean(tokens), "token_share": sum(tokens) / sum(full_tokens),
                     "ms_per_question": 1000 * statistics.median(seconds)})
        log(f"budget {budget}: done")
    header = ["budget", "answer kept", "both gold", "tokens", "of unpruned", "ms/q (median)"]
    lines = [[f"{r['budget']}", f"{r['answer_kept']:.1%}", f"{r['both_gold']:.1%}", f"{r['tokens']:.0f}",
              f"{r['token_share']:.0%}", f"{r['ms_per_question']:.1f}"] for r in rows]
    lines.insert(0, ["none", "100.0%", "100.0%", f"{statistics.mean(full_tokens):.0f}", "100%", "0"])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
    write_results(args.json, {"machine": machine_state(), "questions": len(questions), "contexts": args.contexts,
                              "rows": rows})


if __name__ == "__main__":
    main()
