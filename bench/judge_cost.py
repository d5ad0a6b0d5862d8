"""Judge cost per row: groundedness claim by claim against each claim's evidence (now) against each
claim read with all the row's contexts (the judge before issue 20), on the rows of a stored run.

    nice .venv/bin/python bench/judge_cost.py RUN_DIR [--limit N] [--threads 2]

RUN_DIR is a ``rag eval`` results folder (its rows.json). Both ways read the same claims
(``split_claims``) of the same stored answers with the same contexts, in one process on one llama.cpp
engine, row by row in turn, so load affects both alike. Reported per row: CPU seconds of this
process (llama.cpp's threads included), wall seconds and the prompt tokens llama.cpp read. The
relevance judges of the default ``local`` judge use no LLM and are the same both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import calibrate_judge as cj  # noqa: E402  (the judge on the default model, as calibrated)

pj = cj.pj


def whole_context_groundedness(judge, contexts: list[str], answer: str) -> int:
    """Each claim checked against all the contexts (cut to the window around the claim), as before
    the claim-level evidence: the number of checks made."""
    if pj.ProbabilityJudge.verdict_without_model(contexts, answer) is not None:
        return 0
    source_all = "\n\n".join(c for c in contexts if c and c.strip())
    fixed = judge.engine.count_tokens(pj.SYSTEM) + judge.engine.count_tokens(pj.GROUNDED_USER.format(context="")
                                                                             + pj.GROUNDED_SUFFIX)
    claims = pj.split_claims(answer)
    for claim in claims:
        budget = judge.context_window - fixed - judge.engine.count_tokens(claim) - pj.SAFETY_TOKENS
        source = judge.fit_context(source_all, budget, query=claim)
        reply = judge.engine.chat([{"role": "system", "content": pj.SYSTEM},
                                   {"role": "user", "content": pj.GROUNDED_USER.format(context=source) + claim
                                    + pj.GROUNDED_SUFFIX}], max_tokens=1, logprobs=True, top_logprobs=pj.TOP_LOGPROBS)
        judge.stats["prompt_n"] += (reply.get("timings") or {}).get("prompt_n") or 0
        pj.p_yes(reply)
    return len(claims)


def measured(call) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a rag eval results folder (rows.json)")
    parser.add_argument("--limit", type=int, default=0, help="rows (0 = all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    rows = json.loads((Path(args.run) / "rows.json").read_text(encoding="utf-8"))["rows"]
    rows = [r for r in rows if not r.get("error") and r.get("answer")][: args.limit or None]
    judge = cj.make_judge(pj.DEFAULT_MODEL, args.threads)
    judge.groundedness(["Warm-up source."], "A warm-up claim of some words.")  # the model loaded, the caches warm
    totals = {"before": np.zeros(3), "now": np.zeros(3)}
    for n, r in enumerate(rows, 1):
        contexts, answer, question = r["contexts"], r["answer"], r["question"]
        for way in (("now", "before") if n % 2 else ("before", "now")):  # alternate which goes first
            tokens = judge.stats["prompt_n"]
            if way == "now":
                cpu, wall = measured(lambda: judge.groundedness(contexts, answer, question))
            else:
                cpu, wall = measured(lambda: whole_context_groundedness(judge, contexts, answer))
            totals[way] += (cpu, wall, judge.stats["prompt_n"] - tokens)
        if n % 6 == 0:
            cj.log(f"{n}/{len(rows)} rows")
    print(f"{len(rows)} rows of {args.run}, {args.threads} llama.cpp threads, load average "
          f"{os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}\n")
    print("| groundedness judge | CPU s / row | wall s / row | prompt tokens / row |")
    print("|---|---|---|---|")
    for way, label in (("before", "before: each claim against all the contexts"),
                       ("now", "now: each claim against its evidence")):
        cpu, wall, tokens = totals[way] / len(rows)
        print(f"| {label} | {cpu:.1f} | {wall:.1f} | {tokens:.0f} |")
    ratio = totals["now"][0] / totals["before"][0]
    print(f"\nnow / before, CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()
