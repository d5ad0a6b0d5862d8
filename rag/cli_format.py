"""What `rag` shows on the terminal: what the library returns as tables and reports, errors and
warnings as one line, the chat prompt; third-party chatter kept off. Presentation only: every
value shown comes from a ``RAG`` method (or ``rag.models``); nothing here reads a store. Cheap to
import (``rag --help`` loads it): rich and pandas load inside the functions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def silence_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit does not fail on the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def one_line_warnings() -> None:
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


def quiet_libraries() -> None:
    """Third-party deprecation notices, log lines and download bars off the terminal."""
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


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped as usual; multi-line texts (the examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def choices_help(registry: Any) -> str:
    """Each name of a registry with its help, for an option's help text."""
    return "; ".join(f"{name}: {registry.help(name)}" for name in registry.names())


def global_options(parser: argparse.ArgumentParser, default: Any, generators: Any) -> None:
    """The options every command takes (before or after it)."""
    group = parser.add_argument_group("global options")
    group.add_argument("--config", metavar="FILE", default=default,
                       help="TOML settings file (default: $RAG_CONFIG, else ./rag.toml if there)")
    group.add_argument("--debug", action="store_true", default=default or False,
                       help="show the full traceback of an unexpected error")
    group.add_argument("--storage-dir", metavar="DIR", default=default,
                       help="where indexes and results live (default: ./storage)")
    group.add_argument("--llm-provider", choices=generators.names(), default=default,
                       help="generator backend (default: local): " + choices_help(generators))
    group.add_argument("--llm-model", metavar="NAME", default=default,
                       help="catalogue name (`rag models list`), GGUF path, or the server's model name")
    group.add_argument("--llm-base-url", metavar="URL", default=default,
                       help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def short_name(name: str) -> str:
    """A retriever version's name without its unset parameters: ``basic[top_k=4]``, not ``...,rerank_top_n=None]``."""
    kind, bracket, rest = name.partition("[")
    shown = [p for p in rest.removesuffix("]").split(",") if p and not p.endswith("=None")]
    return f"{kind}[{','.join(shown)}]" if bracket and shown else kind


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


def table(headers: list[str], rows: list[list[str]], width: int = 100, wrap: int = -1) -> None:
    """Rows as a table at most ``width`` columns wide; only column ``wrap`` wraps (the others stay
    whole, so that they can be searched for); numbers right-aligned."""
    import io

    from rich.console import Console
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        numeric = bool(rows) and all(r[i].replace(",", "").replace(".", "").replace(" MB", "").isdigit()
                                     for r in rows if r[i])
        grid.add_column(header, justify="right" if numeric else "left", overflow="fold",
                        no_wrap=i != range(len(headers))[wrap])
    for row in rows:
        grid.add_row(*row)
    console = Console(width=width, highlight=False, soft_wrap=False, file=io.StringIO())
    console.print(grid)
    print("\n".join(line.rstrip() for line in console.file.getvalue().splitlines()))


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


def ingest_report(report: Any, where: str) -> None:
    for message in report.messages:
        print(message)
    if not any(m.startswith("Nothing changed") for m in report.messages):
        print(f"Indexed {len(report.added) + len(report.changed) + len(report.unchanged)} PDF(s), "
              f"{report.pages:,} pages, into {where} in {report.seconds:.1f}s "
              f"(added {len(report.added)}, changed {len(report.changed)}, unchanged {len(report.unchanged)}, "
              f"removed {len(report.removed)}; {report.embedded:,} chunks embedded).")
        table(["index", "nodes", "vectors"],
              [[kind, f"{e['nodes']:,}", f"{e['vectors']:,}"] for kind, e in report.indexes.items()])
    for s in report.ignored:
        print(f"  {s}")
    if report.failed:
        print(f"\nSkipped {len(report.failed)} PDF(s):", file=sys.stderr)
        for s in report.failed:
            print(f"  {s}", file=sys.stderr)


def loading() -> None:
    if sys.stderr.isatty():
        print("Loading the index and the model ...", end="\r", file=sys.stderr, flush=True)


def streamed(stream: Any, show_context: bool) -> None:
    """An answer as the model writes it, then its sources, the time of each stage, and the sources'
    text if asked."""
    for token in stream:
        print(token, end="", flush=True)
    result = stream.result
    print(result.footer())
    t = result.timings
    print(f"\n{short_name(result.retriever)}: retrieve {t.get('retrieve', 0):.2f}s, rerank {t.get('rerank', 0):.2f}s, "
          f"generate {t.get('generate', 0):.2f}s")
    if show_context:
        for i, source in enumerate(result.sources, start=1):
            print(f"\n--- [{i}] {source.citation}\n{source.text.strip()}")


def sources(sources: list[Any]) -> None:
    for i, source in enumerate(sources, start=1):
        score = f" (score {source.score:.2f})" if source.score is not None else ""
        print(f"--- [{i}] {source.citation}{score}\n{source.text.strip()}\n")


def models(rows: list[dict[str, Any]]) -> None:
    table(["model", "role", "size", "status", "description"],
          [[r["name"], r["role"], f"{r['size_mb']:,.0f} MB" if r["size_mb"] else "",
            r["status"].split(":")[0], r["description"]] for r in rows])
    for r in rows:  # where each model is, or how to get it (whole lines: easy to copy)
        if r["path"] != "-" or ":" in r["status"]:
            print(f"  {r['name']}: {r['path'] if r['path'] != '-' else r['status']}")


def evaluation(results: Any, as_json: bool, show_answers: bool) -> None:
    """An evaluation's leaderboard, agreement, files, cache and gate verdict; failed rows and gates on stderr."""
    verdict, summary = results.verdict, results.failure_summary()
    _evaluation(results, verdict, summary, as_json, show_answers)
    if summary:
        print(f"error: {summary}", file=sys.stderr)
    if verdict is not None and not verdict.passed:
        print(f"error: {len(verdict.failures)} gate check(s) failed", file=sys.stderr)


def _evaluation(results: Any, verdict: Any, summary: str | None, as_json: bool, show_answers: bool) -> None:
    dropped = [spec.name for spec in results.screening.dropped] if results.screening else []
    stopping = results.early_stopping
    stopped = [{"version": s.version, "after": s.after, "leader": s.leader, "worse": s.worse, "better": s.better,
                "p_value": s.p_value} for s in stopping.stopped] if stopping is not None else []
    labelled = results.label_agreement()
    if as_json:
        print_json({"leaderboard": results.leaderboard.to_dict(orient="records"),
                    "label_agreement": labelled.to_dict(orient="records"),
                    "failed": len(results.failed), "failure": summary, "best": results.best(),
                    "agreement": results.agreement().as_dict(), "cache": results.cache, "screened_out": dropped,
                    "early_stopped": stopped,
                    "gate": None if verdict is None else {"passed": verdict.passed, "verdict": str(verdict)},
                    "paths": {k: str(v) for k, v in results.paths.items()}})
        return
    if show_answers:
        answers(results.rows)
    print(results)
    if len(results.leaderboard) > 1:
        print(results.best())
    print(results.agreement().to_string())
    label_agreement(labelled)
    for name, path in results.paths.items():
        print(f"{name}: {path}")
    if results.cache:
        print(f"cache: {results.cache}")
    if dropped:
        print("screened out before answering: " + ", ".join(dropped))
    if stopping is not None:
        print(stopping.summary())
    if verdict is not None:
        print(verdict)


def answers(rows: Any) -> None:
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
            for name in ("correctness", "citation_faithfulness"):
                if row.get(f"{name}_reason"):
                    print(f"   {name.replace('_', ' ')}: {row[f'{name}_reason']}")
            if row.get("diagnosis") and row["diagnosis"] != "right":
                print(f"   diagnosis: {row['diagnosis'].replace('_', ' ')}")
    print()


def judged(done: dict[str, Any], path: str, output: str | None, as_json: bool) -> None:
    """What ``RAG.judge_file`` returned: the agreement with the labels, or the scores."""
    result = done["agreement"]
    if as_json:
        print_json({"judge": done["judge"], "metric": done["metric"], "agreement": result,
                    "scores": None if output else done["scores"]})
    elif result is None:
        if not output:
            for s in done["scores"]:
                print(json.dumps(s, ensure_ascii=False))
        print(f"{done['rows']} rows scored in {done['seconds']:.1f}s (no labels of both classes: no agreement to "
              "show).", file=sys.stderr)
    else:
        print(f"judge {done['judge']}, {done['metric']}, {path}")
        kappa = "-" if result["kappa"] is None else f"{result['kappa']:.2f} [{result['kappa_lo']:.2f}, {result['kappa_hi']:.2f}]"
        print(f"  n {result['n']}   AUC {result['auc']:.3f}   balanced accuracy {result['balanced_accuracy']:.3f} "
              f"(threshold {result['threshold']:.2f})   F1 {result['f1']:.3f}   kappa {kappa}   "
              f"{result['items_per_s']:.1f} items/s")
        if output:
            print(f"  scores: {output}")


def questions(report: Any, path: Path, as_json: bool) -> None:
    if as_json:
        print_json({"output": str(path), "kept": len(report.questions), "attempts": report.attempts,
                    "kept_by_type": dict(report.kept_by_type()), "dropped": dict(report.dropped),
                    "examples": report.examples})
    else:
        print(f"{report.summary()}\nwrote {path}")
        for reason, example in report.examples.items():
            print(f"  dropped as {reason}, e.g.: {example.splitlines()[0][:120] if example else '(empty reply)'}")
    if not report.questions:
        print("error: no question passed the checks: try a stronger generator (--llm-model) or another -n/--seed",
              file=sys.stderr)


def ready(paths: Any, as_json: bool) -> None:
    """Each model as `rag models pull` makes it ready (on stderr under --json: stdout is the JSON)."""
    for path in paths:
        print(f"ready: {path}", file=sys.stderr if as_json else sys.stdout)


def config(settings: Any, action: str, output: Path, as_json: bool) -> None:
    """`rag config`: the settings in effect, or what `rag config init` wrote."""
    if action == "init":
        print(f"wrote {output}: every setting, commented out; uncomment what you change.")
    else:
        print_json(settings.resolved()) if as_json else print(settings.to_toml(), end="")


def dashboard(settings: Any, port: int) -> None:
    """Run the TruLens dashboard, saying where it is; returns when it exits by itself (an error)."""
    from rag.config import mask_password
    from rag.evaluation.trulens.dashboard import run_dashboard

    database = mask_password(settings.resolved_database_url)
    code = run_dashboard(settings, port, started=lambda url: print(
        f"TruLens dashboard: {url}  (database {database}); Ctrl-C to stop.", flush=True))
    print(f"The dashboard exited by itself (code {code}); see {Path(settings.storage_dir) / 'dashboard.log'}.",
          file=sys.stderr)


def leaderboard(board: Any, as_json: bool, agreement: Any = None) -> None:
    """The stored leaderboard; with labels, each version's labelled correctness and the judges' agreement."""
    if as_json:
        print_json(board.to_dict(orient="records"))
    elif board.empty:
        print("No evaluation runs stored yet: run `rag eval` first.")
    else:  # the same table as `rag eval` prints, from the stored records
        from rag.evaluation.ranking import display, shown_columns

        columns = shown_columns(board, first=("rank", "retriever", "llm", "judge", "questions", "records"))
        if "labelled_correct" in board:  # as text: a share over n labels, no interval
            board = board.assign(labels=[f"{v:.2f} of {n}" if n else "" for v, n in
                                         zip(board["labelled_correct"], board["labelled_correct_n"])])
            columns.insert(columns.index("correctness") + 1, "labels")
        print(display(board, columns))
        label_agreement(agreement)


def label_agreement(agreement: Any) -> None:
    """Each judge against the person's labels (``RAG.label_agreement``); nothing without labels."""
    if agreement is None or agreement.empty:
        return
    number = lambda v: "-" if v is None or v != v else f"{v:.2f}"  # noqa: E731  (None or NaN: one class only)
    partly = "partly" in agreement and agreement["partly"].any()  # partly right answers: not in n, counted apart
    print("Judges against your labels (yes at score >= 0.5; '-': the labels hold one class only"
          + ("; partly right answers are left out of n and counted apart" if partly else "") + "):")
    table(["judge", "metric", "n", *(["partly"] if partly else []), "balanced accuracy", "AUC", "kappa [95% interval]"],
          [[r.judge, r.metric, str(r.n), *([str(r.partly)] if partly else []), number(r.balanced_accuracy),
            number(r.auc), f"{number(r.kappa)} [{number(r.kappa_lo)}, {number(r.kappa_hi)}]"]
           for r in agreement.itertuples()], wrap=0)


def labels_moved(moved: Any, path: str) -> None:
    """What `rag label --export` (a count) or `--import` (added, already stored) did."""
    if isinstance(moved, tuple):
        print(f"imported {moved[0]} label(s) from {path}; {moved[1]} were stored already")
    else:
        print(f"exported {moved} label(s) to {path} (JSONL; `rag judge METRIC {path}` reads the lines of METRIC)")


def label_loop(session: Any, sync: Any = None) -> None:
    """`rag label`: show each row, read one key at a time, until the rows end or the person quits;
    then ``sync()`` (``RAG.sync_label_feedback``) shows the labels in the dashboard."""
    from rag.evaluation.labeling import HELP

    print(f"run {session.run}: {session.position[1]} row(s) to label"
          f"{f', {session.already_labelled} labelled before' if session.already_labelled else ''}.\nkeys: {HELP}")
    keys, shown = _keys(), None
    while not session.done:
        if session.row is not shown:
            shown = session.row
            _label_row(shown, *session.position)
        print(session.prompt(), flush=True)
        print("  " + session.press(next(keys, "q")))  # input ended: quit (finished rows are stored)
    print(f"labelled {session.labelled}, skipped {session.skipped} in this session; "
          + ("run `rag label` again to resume." if session.quit else "no row left to label."), flush=True)
    if session.changed and sync is not None:
        labels_in_dashboard(sync())


def labels_in_dashboard(synced: Any) -> None:
    """Where the labels show in the TruLens dashboard (a ``LabelSync``)."""
    elsewhere = (f"; {len(synced.not_recorded)} labelled answer(s) are no record of this database (rag serve's, "
                 "or imported)" if synced.not_recorded else "")
    print(f"`rag dashboard` shows your labels beside the judges' scores on {synced.records} record(s){elsewhere}.")


def _keys() -> Any:
    """Single keys: at a terminal without Enter; from a pipe, each non-blank character."""
    if sys.stdin.isatty():
        import termios
        import tty

        import os

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd, termios.TCSANOW)  # not TCSAFLUSH: a key typed before this point is kept
            while True:  # the descriptor, not sys.stdin: its buffer waits for more than one key
                key = os.read(fd, 1)
                if not key:
                    return
                yield key.decode(errors="replace")
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    for line in sys.stdin:
        yield from (c for c in line if not c.isspace())


def _label_row(row: dict[str, Any], number: int, total: int) -> None:
    from rag.app import citations

    contexts, sources = row.get("contexts") or [], row.get("sources") or []
    cited, _ = citations(str(row.get("answer") or ""), len(contexts))
    print(f"\n--- row {number} of {total} · {row.get('retriever') or row.get('version')}")
    print(f"question: {row.get('question')}\nanswer: {row.get('answer')}")
    for i, text in enumerate(contexts, start=1):
        mark = "*" if i in cited else " "  # the contexts the answer cites
        where = f" {sources[i - 1]}" if i <= len(sources) else ""
        flat = " ".join(str(text).split())
        print(f" {mark}[{i}]{where}: {flat[:400]}{'...' if len(flat) > 400 else ''}")
    print(f"reference: {row.get('reference_answer') or '(none)'}")


def calibrated(done: dict[str, Any], as_json: bool) -> None:
    """What `rag judge calibrate` fitted, with its held-out agreement; or what --reset removed."""
    if as_json:
        print_json(done)
    elif "removed" in done:
        print(f"removed {done['path']}: the judge uses its shipped coefficients again" if done["removed"]
              else f"no calibration at {done['path']}: nothing to remove")
    else:
        print(f"calibrated the probability judge ({done['model']}) on your labels: {done['path']}")
        for metric, fit in done["metrics"].items():
            what = "weights and bias" if fit["fitted"] == "weights" else f"the threshold (to {fit['threshold']:.2f})"
            held = fit["held_out"]
            print(f"  {metric}: {fit['n']} labels, fitted {what}; held out ({held['folds']}-fold cross-validation):\n"
                  f"    shipped     {_agreement_text(held['before'])}\n    calibrated  {_agreement_text(held['after'])}")
        for why in done["skipped"]:
            print(f"  not calibrated: {why}")


def _agreement_text(measured: dict[str, Any] | None) -> str:
    if not measured:
        return "(the labels hold one class only)"
    kappa = "-" if measured["kappa"] is None else f"{measured['kappa']:.2f}"
    return f"balanced accuracy {measured['balanced_accuracy']:.3f}   AUC {measured['auc']:.3f}   kappa {kappa}"


def index_listing(manifest: dict[str, Any], storage_dir: Path, where: str, as_json: bool) -> None:
    """What ``RAG.sources`` returned: the indexed PDFs and the indexes built from them."""
    files, indexes = manifest.get("files", {}), manifest.get("indexes", {})
    if as_json:
        print_json({"storage_dir": str(storage_dir.resolve()), "embed_model": manifest.get("embed_model"),
                    "source": manifest.get("source"), "updated": manifest.get("updated"),
                    "files": [{"name": n, **f} for n, f in files.items()],
                    "indexes": [{"key": k, **e} for k, e in indexes.items()]})
        return
    pages = sum(f.get("pages", 0) for f in files.values())
    print(f"{len(files)} PDF(s), {pages:,} pages; embedding {manifest.get('embed_model')} "
          f"({manifest.get('embed_dim')}-d); last updated {_when(manifest.get('updated'))}")
    print(f"  index in: {where}\n  PDFs from: {manifest.get('source', '?')}")
    table(["file", "pages", "indexed", "sha256"],
          [[n, f"{f.get('pages', 0):,}", _when(f.get("indexed") or manifest.get("updated")), f["sha256"][:12]]
           for n, f in sorted(files.items())], wrap=0)
    table(["index", "parameters", "nodes", "vectors"],
          [[e["kind"] + ("" if e.get("default", True) else " (extra)"),
            ", ".join(f"{k}={_show(v)}" for k, v in e.get("params", {}).items() if k != "kind" and v is not None),
            f"{e.get('nodes', 0):,}", f"{e.get('vectors', 0):,}"] for e in indexes.values()])


def confirm_reset(what: str) -> bool:
    """Asks before ``rag reset`` deletes ``what``; refuses without a terminal to ask on."""
    from rag.errors import InputError

    if not sys.stdin.isatty():
        raise InputError(f"rag reset would delete {what}: pass --yes to confirm.")
    return input(f"Delete {what}? [y/N] ").strip().lower() in ("y", "yes")


def migrated(done: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(done)
        return
    print(f"Copied {done['files']} PDF(s) from {done['from']} to {done['to']} in {done['seconds']}s "
          "(nothing re-embedded).")
    table(["index", "nodes", "vectors"], [[e["kind"], f"{e['nodes']:,}", f"{e['vectors']:,}"]
                                          for e in done["indexes"].values()])


def chat_session(chat: Any, where: Any) -> None:
    """Questions from the terminal to ``chat`` until /quit or Ctrl-D; a bad question does not end it."""
    from rag.errors import RagError

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    print(f"Chat over {where} with {short_name(chat.spec.name)}: ask a question; "
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
        except RagError as exc:
            print(f"error: {exc}")
