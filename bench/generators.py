"""Which local generator and synthesis prompt answer best: correctness, abstention, seconds per answer.

    .venv/bin/python bench/generators.py [--model NAME ...] [--prompt default|strict ...] [--retriever basic]
                                         [--limit N] [--markdown]

On the sample PDFs in data/ (ingested once into a temporary folder): the answerable questions of
eval_questions/sample.jsonl (with reference answers) and the unanswerable ones of
eval_questions/unanswerable.txt. Per model and prompt:

- ``correct``: mean token recall of the reference answer (rag.evaluation.metrics), answerable only;
- ``right@0.5``: share of answerable questions with recall >= 0.5;
- ``abstain``: share of answerable questions answered with an abstention (should be low);
- ``unans_answered``: share of unanswerable questions that got an answer instead of an abstention
  (should be low);
- wall and CPU seconds per answer (the machine may be shared: compare ratios within one run).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, machine_state  # noqa: E402

from rag.evaluation.judges.lexical import is_refusal  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_questions(limit: int | None) -> tuple[list[dict], list[str]]:
    answerable = [json.loads(line) for line in (ROOT / "eval_questions" / "sample.jsonl").read_text().splitlines()
                  if line.strip()]
    unanswerable = [line.strip() for line in (ROOT / "eval_questions" / "unanswerable.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    return answerable[:limit], unanswerable[:limit]


def run(app, model: str, prompt: str, retriever: str, answerable: list[dict], unanswerable: list[str]) -> dict:
    from llama_index.core.prompts import PromptTemplate

    from rag.evaluation.metrics import token_recall
    from rag.generation.synthesize import PROMPTS

    engine = app.query_engine(retriever)
    system, template = PROMPTS[prompt]
    engine.update_prompts({"response_synthesizer:system_prompt": PromptTemplate(system),
                           "response_synthesizer:question_template": template})
    recalls, abstained, answered_unanswerable, seconds, cpu, answers = [], 0, 0, [], [], []
    for item in answerable + [{"question": q} for q in unanswerable]:
        start, start_cpu = time.perf_counter(), cpu_seconds()
        answer = str(engine.query(item["question"]).response).strip()
        seconds.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
        refused = is_refusal(answer)
        if "reference_answer" in item:
            recalls.append(0.0 if refused else token_recall(answer, item["reference_answer"]))
            abstained += refused
        else:
            answered_unanswerable += not refused
        answers.append({"question": item["question"], "answer": answer, "reference": item.get("reference_answer")})
        log(f"{model}/{prompt}: {seconds[-1]:.1f}s {answer[:90]!r}")
    n = len(recalls)
    return {"model": model, "prompt": prompt, "n": n, "correct": sum(recalls) / n,
            "right@0.5": sum(r >= 0.5 for r in recalls) / n, "abstain": abstained / n,
            "unans_answered": answered_unanswerable / max(len(unanswerable), 1),
            "s/answer": sum(seconds) / len(seconds), "cpu_s/answer": sum(cpu) / len(cpu), "answers": answers}


def render(rows: list[dict], markdown: bool) -> str:
    cols = ["model", "prompt", "n", "correct", "right@0.5", "abstain", "unans_answered", "s/answer", "cpu_s/answer"]
    cells = [[f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                         + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in [cols, *cells])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="catalogue names (default: all three)")
    parser.add_argument("--prompt", action="append", choices=["default", "plain", "strict"], help="default: default and strict")
    parser.add_argument("--retriever", default="basic")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, help="first N questions of each set")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    from rag import RAG, Config

    answerable, unanswerable = load_questions(args.limit)
    storage = Path(tempfile.mkdtemp(prefix="rag-bench-generators-"))
    docs = storage / "docs"
    docs.mkdir()
    for pdf in (ROOT / "data").glob("*.pdf"):
        shutil.copy(pdf, docs / pdf.name)
    rows = []
    try:
        RAG(Config(storage_dir=storage / "index")).ingest(docs, progress=False)
        for model in args.model or ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]:
            app = RAG(Config(storage_dir=storage / "index", llm_model=model, llm_threads=args.threads))
            for prompt in args.prompt or ["default", "strict"]:
                rows.append(run(app, model, prompt, args.retriever, answerable, unanswerable))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "generators.json").write_text(json.dumps({"machine": machine_state(), "rows": rows}, indent=2))
    print(render(rows, args.markdown))
    print(f"\nretriever {args.retriever}, threads {args.threads}; machine {machine_state()['loadavg']} load; "
          f"answers in bench/results/generators.json")


if __name__ == "__main__":
    main()
