"""`rag` command line: a thin client of the library API. Heavy imports happen inside commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Exit codes (README, "Exit codes"): 0 done; 1 done, but some PDFs were skipped; 2 nothing done: bad
# input, settings, model or server (one line on stderr says what to do); 3 evaluation done, but some
# answers failed or were not scored; 4 evaluation done, but a --fail-under gate failed; 130 interrupted.
EXIT_OK, EXIT_SKIPPED, EXIT_ERROR, EXIT_FAILED_ROWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_GATE_FAILED = 4


def _parser() -> argparse.ArgumentParser:
    from rag.evaluation.judges import JUDGES
    from rag.generation import GENERATORS
    from rag.retrieval import RETRIEVER_KINDS

    kinds = " | ".join(RETRIEVER_KINDS.names())
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Question answering over your PDFs, with switchable retrievers and TruLens evaluation.",
        epilog="Settings: --config FILE (TOML) or RAG_* environment variables; see `rag config`.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $RAG_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    parser.add_argument("--storage-dir", metavar="DIR", help="where indexes and results live (default: ./storage)")
    parser.add_argument("--llm-provider", choices=GENERATORS.names(),
                        help="generator backend (default: local): " + _choices_help(GENERATORS))
    parser.add_argument("--llm-model", metavar="NAME", help="catalogue name (`rag models list`), GGUF path, "
                                                            "or the server's model name")
    parser.add_argument("--llm-base-url", metavar="URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="index the PDFs under PATH (incremental)")
    p.add_argument("path", help="a PDF file or a folder of PDFs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("query", help="answer a question from the indexed PDFs")
    p.add_argument("question")
    p.add_argument("--retriever", "-r", default="basic",
                   help=f"{kinds}, optionally with parameters: sentence_window:window_size=1,top_k=4")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show-context", action="store_true", help="print the text of each source")

    p = sub.add_parser("retrieve", help="show the context a retriever finds, without calling the LLM")
    p.add_argument("question")
    p.add_argument("--retriever", "-r", default="basic")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("models", help="list or fetch the local models")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument("names", nargs="*", metavar="NAME", help="models to pull (default: the configured generator)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("eval", help="run a question set through retriever versions and score the RAG triad")
    p.add_argument("--questions", "-q", default="eval_questions/eval_questions.txt",
                   help="plain text (one question per line) or JSONL with references")
    p.add_argument("--retriever", "-r", action="append", dest="retrievers", metavar="SPEC",
                   help="repeatable; default: all three kinds with their defaults; sweep with |, e.g. "
                        "'sentence_window:window_size=1|3|5' (every combination)")
    p.add_argument("--judge", choices=JUDGES.names(), help="triad judge (default: config, local): "
                   + _choices_help(JUDGES))
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--at", default="1,3,5", metavar="K,K", help="retrieval cut-offs for hit_rate@K / ndcg@K "
                   "(default 1,3,5), beside each retriever's own k")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=MIN",
                   help="repeatable CI gate, e.g. groundedness=0.7 or hit_rate@5=0.8: exit 4 when any "
                        "version's mean is below")
    p.add_argument("--output", metavar="DIR", help="where to write CSV/JSON/PNG results")
    p.add_argument("--show-answers", action="store_true", help="print every answer with its sources and scores")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("judge", help="score a JSONL file with a judge; with labels, measure agreement",
                       description="Score one metric of the RAG triad on your own rows. Lines: groundedness "
                                   "{\"context\" or \"contexts\", \"answer\", \"label\"?}; context_relevance "
                                   "{\"question\", \"context\", \"label\"?}; answer_relevance {\"question\", "
                                   "\"answer\", \"label\"?}. Label 1 = grounded / relevant.",
                       epilog="example: rag judge groundedness bench/judge_sets/groundedness_adversarial.jsonl "
                              "--judge lexical -o scores.jsonl")
    p.add_argument("metric", choices=["groundedness", "context_relevance", "answer_relevance"])
    p.add_argument("file", help="JSONL, one object per line")
    p.add_argument("--judge", choices=JUDGES.names(), help="default: config (local)")
    p.add_argument("--output", "-o", metavar="FILE", help="write one {\"score\", \"reason\"} per input line")
    p.add_argument("--json", action="store_true", help="print the agreement (or the scores) as JSON")

    p = sub.add_parser("leaderboard", help="compare the stored evaluation runs")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("dashboard", help="start the TruLens dashboard on 127.0.0.1")
    p.add_argument("--port", type=int, default=8501)

    sub.add_parser("config", help="print the effective settings")
    return parser


def _choices_help(registry: Any) -> str:
    return "; ".join(f"{name}: {registry.help(name)}" for name in registry.names())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rag.errors import RagError

    try:
        return COMMANDS[args.command](args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was half-written; the previous index is intact.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rag ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {describe(exc)} (run again with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def describe(exc: BaseException) -> str:
    """One line for a failure that is not ours: a server that is down or refuses, or anything else."""
    name = type(exc).__name__
    if name == "APIConnectionError":
        return "cannot reach the model server: check RAG_LLM_BASE_URL / RAG_JUDGE_BASE_URL and that it is running"
    if name in ("AuthenticationError", "PermissionDeniedError"):
        return f"the model server refused the API key ({name}): check OPENAI_API_KEY / RAG_LLM_API_KEY"
    if name == "NotFoundError":
        return f"the model server does not know that model or route: {str(exc).splitlines()[0][:160]}"
    message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{name}: {message}" if message else name


def _config(args: argparse.Namespace):
    from rag.config import Config

    return Config.load(args.config, storage_dir=args.storage_dir, llm_provider=args.llm_provider,
                       llm_model=args.llm_model, llm_base_url=args.llm_base_url)


def _app(args: argparse.Namespace):
    _quiet_libraries()
    from rag.app import RAG

    return RAG(_config(args))


def _quiet_libraries() -> None:
    import logging
    import warnings

    # Libraries' deprecation notices are not for our users; our own warnings (failed questions,
    # missing feedback) and anything else still show.
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"^(?!rag\b)")
    for name in ("llama_index", "sentence_transformers", "transformers", "faiss", "httpx", "trulens"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_ingest(args: argparse.Namespace) -> int:
    app = _app(args)
    report = app.ingest(args.path, progress=not (args.quiet or args.json))
    if args.json:
        _print_json(report.as_dict())
    else:
        for message in report.messages:
            print(message)
        print(f"Indexed {len(report.added) + len(report.changed) + len(report.unchanged)} PDF(s), "
              f"{report.pages} pages, into {Path(app.config.storage_dir).resolve()} in {report.seconds:.1f}s "
              f"(added {len(report.added)}, changed {len(report.changed)}, unchanged {len(report.unchanged)}, "
              f"removed {len(report.removed)}; {report.embedded} chunks embedded).")
        for kind, entry in report.indexes.items():
            print(f"  {kind:16} {entry['nodes']:6} nodes, {entry['vectors']:6} vectors")
        for s in report.ignored:
            print(f"  ignored {s}")
        if report.failed:
            print(f"\nSkipped {len(report.failed)} PDF(s):", file=sys.stderr)
            for s in report.failed:
                print(f"  {s}", file=sys.stderr)
    return EXIT_SKIPPED if report.failed else EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    app = _app(args)
    if args.json:  # one document: nothing to stream
        _print_json(app.query(args.question, retriever=args.retriever).as_dict())
        return EXIT_OK
    if sys.stderr.isatty():
        print("Loading the index and the model ...", end="\r", file=sys.stderr, flush=True)
    stream = app.query(args.question, retriever=args.retriever, stream=True)
    for token in stream:  # the answer as the model writes it
        print(token, end="", flush=True)
    result = stream.result
    print(result.footer())
    t = result.timings
    print(f"\n{result.retriever}: retrieve {t.get('retrieve', 0):.2f}s, rerank {t.get('rerank', 0):.2f}s, "
          f"generate {t.get('generate', 0):.2f}s")
    if args.show_context:
        for i, source in enumerate(result.sources, start=1):
            print(f"\n--- [{i}] {source.citation}\n{source.text.strip()}")
    return EXIT_OK


def cmd_retrieve(args: argparse.Namespace) -> int:
    sources = _app(args).retrieve(args.question, retriever=args.retriever)
    if args.json:
        _print_json([{**s.__dict__, "citation": s.citation} for s in sources])
        return EXIT_OK
    for i, source in enumerate(sources, start=1):
        score = f" (score {source.score:.2f})" if source.score is not None else ""
        print(f"--- [{i}] {source.citation}{score}\n{source.text.strip()}\n")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from rag import models

    config = _config(args)
    if args.action == "pull":
        _quiet_libraries()
        for path in models.pull_models(config, args.names or None):
            print(f"ready: {path}")
    rows = models.list_models(config)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            size = f"{row['size_mb']:,.0f} MB" if row["size_mb"] else ""
            print(f"{row['name']:20} {row['role']:10} {size:>9}  {row['description'][:44]:44} {row['status']}")
            if row["path"] != "-":
                print(f"{'':20} {row['path']}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation.gate import gate_cutoffs, parse_thresholds
    from rag.evaluation.run import cutoffs, evaluate

    gates = parse_thresholds(args.fail_under)  # bad thresholds fail before any model loads
    at = cutoffs([*cutoffs(args.at), *gate_cutoffs(gates)])
    app = _app(args)
    results = evaluate(app, args.questions, retrievers=args.retrievers or None, judge=args.judge,
                       progress=not args.json, output_dir=args.output, limit=args.limit, at=at)
    summary = results.failure_summary()
    verdict = results.gate(gates) if gates else None
    if args.json:
        _print_json({"leaderboard": results.leaderboard.to_dict(orient="records"),
                     "failed": len(results.failed), "failure": summary, "best": results.best(),
                     "gate": None if verdict is None else {"passed": verdict.passed, "verdict": str(verdict)},
                     "paths": {k: str(v) for k, v in results.paths.items()}})
    else:
        if args.show_answers:
            _print_answers(results.rows)
        print(results)
        if len(results.leaderboard) > 1:
            print(results.best())
        for name, path in results.paths.items():
            print(f"{name}: {path}")
        if verdict is not None:
            print(verdict)
    if summary:
        print(f"error: {summary}", file=sys.stderr)
    if verdict is not None and not verdict.passed:
        print(f"error: {len(verdict.failures)} gate check(s) failed", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_FAILED_ROWS if summary else EXIT_OK


def _print_answers(rows) -> None:
    for retriever, group in rows.groupby("retriever", sort=False):
        print(f"\n=== {retriever}")
        for _, row in group.iterrows():
            print(f"\nQ: {row['question']}\nA: {row['answer'] or row.get('error')}")
            for i, citation in enumerate(row["sources"] or [], start=1):
                print(f"   [{i}] {citation}")
            scores = ", ".join(f"{name} {row[name]:.2f}" for name in
                               ("context_relevance", "groundedness", "answer_relevance")
                               if isinstance(row.get(name), float) and row[name] == row[name])
            if scores:
                print(f"   triad: {scores}")
    print()


def cmd_judge(args: argparse.Namespace) -> int:
    from rag.evaluation.judge_file import agreement, load_rows, score_rows
    from rag.evaluation.judges import JUDGES, make_judge

    config = _config(args)
    rows = load_rows(args.file, args.metric)  # validates every line before any model loads
    _quiet_libraries()
    judge = make_judge(config, args.judge)
    scored, seconds = score_rows(judge, rows, progress=_judge_progress(len(rows), enabled=not args.json))
    if args.output:
        Path(args.output).write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in scored))
    name = args.judge or config.judge
    result = agreement([s["score"] for s in scored], [r.label for r in rows],
                       float(getattr(judge, "threshold", 0.5)), seconds)
    if args.json:
        _print_json({"judge": JUDGES.get(name).label_for(config), "metric": args.metric,
                     "agreement": result, "scores": None if args.output else scored})
        return EXIT_OK
    if result is None:
        if not args.output:
            for s in scored:
                print(json.dumps(s, ensure_ascii=False))
        print(f"{len(rows)} rows scored in {seconds:.1f}s (no labels of both classes: no agreement to show).",
              file=sys.stderr)
        return EXIT_OK
    print(f"judge {JUDGES.get(name).label_for(config)}, {args.metric}, {args.file}")
    print(f"  n {result['n']}   AUC {result['auc']:.3f}   balanced accuracy {result['balanced_accuracy']:.3f} "
          f"(threshold {result['threshold']:.2f})   F1 {result['f1']:.3f}   {result['items_per_s']:.1f} items/s")
    if args.output:
        print(f"  scores: {args.output}")
    return EXIT_OK


def _judge_progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="Judging", unit="row", file=sys.stderr, leave=False)
    return lambda done: bar.update(done - bar.n)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from rag.errors import InputError
    from rag.evaluation import leaderboard

    config = _config(args)
    if not config.database_url and not Path(config.storage_dir).is_dir():  # a read: never create a folder
        raise InputError(f"No storage folder {Path(config.storage_dir).resolve()}: check --storage-dir / "
                         "RAG_STORAGE_DIR, or run `rag eval` first.")
    table = leaderboard(config)
    if args.json:
        _print_json(table.to_dict(orient="records"))
    elif table.empty:
        print("No evaluation runs stored yet: run `rag eval` first.")
    else:  # the same table as `rag eval` prints, from the stored records
        from rag.evaluation.ranking import display, shown_columns

        print(display(table, shown_columns(table, first=("rank", "retriever", "llm", "judge", "records"))))
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    from rag.evaluation.dashboard import start_dashboard

    config = _config(args)
    url, process = start_dashboard(config, port=args.port)
    print(f"TruLens dashboard: {url}  (database {config.resolved_database_url}); Ctrl-C to stop.")
    try:
        process.wait()
    finally:
        process.terminate()
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    _print_json(_config(args).as_dict())
    return EXIT_OK


def _print_table(frame) -> None:
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


COMMANDS = {
    "ingest": cmd_ingest, "query": cmd_query, "retrieve": cmd_retrieve, "models": cmd_models,
    "eval": cmd_eval, "judge": cmd_judge, "leaderboard": cmd_leaderboard, "dashboard": cmd_dashboard, "config": cmd_config,
}

if __name__ == "__main__":
    sys.exit(main())
