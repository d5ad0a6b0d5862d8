"""`rag label` through its CLI on a real stored run (real index, embedder, TruLens and SQLite; answers
from a fake OpenAI-compatible server): label with scripted keys, quit, resume; then `rag leaderboard`
shows each version's labelled correctness and the judges' agreement with the numbers a hand count
gives, and ranks by the labels; export and import round-trip."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from fake_openai import FakeOpenAIServer
from rag.evaluation.questions import load_questions

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = load_questions(ROOT / "eval_questions" / "sample.jsonl")[:4]
ANSWERED = {q.question: q.reference_answer for q in QUESTIONS[:2]}  # the other two: "I don't know."


def reply(body: dict) -> str:
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    return next((answer for question, answer in ANSWERED.items() if question in prompt), "I don't know.")


@pytest.fixture(scope="module")
def run(sample_app, tmp_path_factory):
    from rag import RAG
    from rag.evaluation import evaluate

    database = tmp_path_factory.mktemp("labels") / "trulens.sqlite"
    with FakeOpenAIServer(reply) as server:
        app = RAG(sample_app.config.replace(llm_provider="openai_like", llm_base_url=server.base_url, llm_model="fake",
                                            judge="lexical", database_url=f"sqlite:///{database}"))
        results = evaluate(app, QUESTIONS, retrievers=["basic:top_k=1|2"], judge="lexical", progress=False,
                           output_dir=tmp_path_factory.mktemp("run"))
    return app, results


def rag(app, monkeypatch, capsys, *args: str, keys: str = "") -> tuple[int, str]:
    from rag.cli import main

    monkeypatch.setenv("RAG_DATABASE_URL", app.config.database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(keys))
    code = main(["--storage-dir", str(app.config.storage_dir), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def by_hand(scores: list[float], labels: list[int]) -> tuple[float, float]:
    """Balanced accuracy and Cohen's kappa of "score >= 0.5" against the labels, counted out."""
    said = [s >= 0.5 for s in scores]
    tp = sum(1 for s, l in zip(said, labels) if s and l)
    tn = sum(1 for s, l in zip(said, labels) if not s and not l)
    positives, n = sum(labels), len(labels)
    balanced = (tp / positives + tn / (n - positives)) / 2
    observed = (tp + tn) / n
    chance = (sum(said) / n) * (positives / n) + (1 - sum(said) / n) * (1 - positives / n)
    return balanced, (observed - chance) / (1 - chance)


def test_label_quit_resume_then_leaderboard_agreement(run, monkeypatch, capsys, tmp_path):
    app, results = run
    folder = str(results.paths["dir"])
    two, one = app.spec("basic:top_k=2").name, app.spec("basic:top_k=1").name
    rows = results.rows
    first = rows[rows["retriever"] == two]
    # Version top_k=2 (two contexts): row 1 correct, grounded, first context relevant, then "n";
    # row 2 skipped; row 3 half-labelled, then quit.
    code, out = rag(app, monkeypatch, capsys, "label", "--run", folder, "--version", two, "--who", "tester",
                    keys="c g r n\ns wq")
    assert code == 0, out
    assert "row 1 of 4" in out and f"question: {QUESTIONS[0].question}" in out and "reference: " in out
    assert "*[1]" in out or " [1]" in out  # the contexts are listed, a cited one marked
    assert "labelled 1, skipped 1" in out and "run `rag label` again to resume" in out
    store = app.labels()
    assert {(l.metric, l.value, l.annotator) for l in store.labels()} == {
        ("answer", 1, "tester"), ("groundedness", 1, "tester"), ("context_relevance", 1, "tester")}
    assert {l.record_id for l in store.labels()} == {first["record_id"].iloc[0]}

    # Resume: row 1 is passed over; the skipped row 2 comes back first. End of input quits.
    code, out = rag(app, monkeypatch, capsys, "label", "--run", folder, "--version", two, "--who", "tester",
                    keys="cgn" + "wun" + "pun")
    assert code == 0 and "3 row(s) to label, 1 labelled before" in out and "labelled 3, skipped 0" in out
    assert f"question: {QUESTIONS[1].question}" in out.split("row 1 of 3")[1].split("row 2 of 3")[0]
    # Version top_k=1 (one context, so "r" ends a row): every answer correct and grounded.
    code, out = rag(app, monkeypatch, capsys, "label", "--run", folder, "--version", one, keys="cgr" * 4)
    assert code == 0 and "labelled 4, skipped 0" in out and "no row left to label" in out

    # By hand: top_k=2 rows c, c, w, p (partly: 0.5), grounded g, g, u, u; top_k=1 all yes.
    labels = {two: ([1, 1, 0, 0.5], [1, 1, 0, 0]), one: ([1, 1, 1, 1], [1, 1, 1, 1])}
    ordered = [rows[rows["retriever"] == version] for version in (two, one)]
    correct = [v for version in (two, one) for v in labels[version][0]]
    grounded = [v for version in (two, one) for v in labels[version][1]]
    code, out = rag(app, monkeypatch, capsys, "leaderboard")
    assert code == 0, out
    assert "Judges against your labels" in out
    balanced, kappa = by_hand([s for part in ordered for s in part["groundedness"]], grounded)
    line = next(l for l in out.splitlines() if l.strip().startswith("lexical") and "groundedness" in l)
    assert " 8 " in line and f"{balanced:.2f}" in line and f"{kappa:.2f} [" in line
    # Key facts are measured on the answers labelled right or wrong: the partly right one is counted apart.
    decided = [(s, l) for s, l in zip([s for part in ordered for s in part["correctness"]], correct) if l != 0.5]
    balanced, kappa = by_hand([s for s, _ in decided], [l for _, l in decided])
    line = next(l for l in out.splitlines() if l.strip().startswith("key facts"))
    assert re.search(r"correctness\s+7\s+1\s", line) and f"{balanced:.2f}" in line and f"{kappa:.2f} [" in line
    assert "partly right answers are left out of n" in out
    assert "0.62 of 4" in out and "1.00 of 4" in out  # each version's mean answer label (partly: half)

    # Each session ended by showing its labels in the TruLens dashboard: the leaderboard's mean per version.
    from rag.evaluation.trulens.session import open_session

    dashboard = open_session(app.config.database_url).get_leaderboard().reset_index().set_index("app_version")
    for version, (right, grounded_by_hand) in labels.items():
        app_version = rows[rows["retriever"] == version]["version"].iloc[0]
        assert dashboard.loc[app_version, "label: correctness"] == pytest.approx(sum(right) / 4)
        assert dashboard.loc[app_version, "label: groundedness"] == pytest.approx(sum(grounded_by_hand) / 4)

    code, out = rag(app, monkeypatch, capsys, "leaderboard", "--rank-by", "labels")
    assert code == 0 and "anked by labelled correctness (your labels)" in out
    ranked = [l for l in out.splitlines() if l.startswith(("1 ", "2 "))]
    assert "1.00 of 4" in ranked[0] and "0.62 of 4" in ranked[1]
    assert list(app.leaderboard(rank_by="labels")["retriever"]) == [one, two]

    agreement = app.label_agreement().set_index("metric")
    assert agreement.loc["groundedness", "n"] == 8 and agreement.loc["context_relevance", "n"] == 5
    assert results.label_agreement().equals(app.label_agreement())  # the run's own rows: the same table

    exported = tmp_path / "labels.jsonl"
    code, out = rag(app, monkeypatch, capsys, "label", "--export", str(exported))
    assert code == 0 and "exported 21 label(s)" in out
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert sum(1 for l in lines if l["metric"] == "answer" and l["label"] == 0.5) == 1
    code, out = rag(app, monkeypatch, capsys, "label", "--import", str(exported))
    assert code == 0 and "imported 0 label(s)" in out and "21 were stored already" in out
    code, out = rag(app, monkeypatch, capsys, "judge", "groundedness", str(exported), "--judge", "lexical")
    assert code == 0 and "n 8" in out and "kappa" in out


def test_label_errors_are_one_line(run, monkeypatch, capsys, tmp_path):
    app, results = run
    code, out = rag(app, monkeypatch, capsys, "label", "--run", str(tmp_path / "nowhere"))
    assert code == 2 and out.strip().startswith("error: --run") and len(out.strip().splitlines()) == 1
    code, out = rag(app, monkeypatch, capsys, "label", "--run", str(results.paths["dir"]), "--version", "nope")
    assert code == 2 and "--version 'nope'" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"metric": "vibes", "question": "q", "label": 1}\n')
    code, out = rag(app, monkeypatch, capsys, "label", "--import", str(bad))
    assert code == 2 and "bad.jsonl, line 1" in out and "metric" in out


def test_judge_calibrate_needs_enough_labels_and_reset_says_what_it_did(run, monkeypatch, capsys):
    app, _ = run
    code, out = rag(app, monkeypatch, capsys, "judge", "calibrate")  # at most 8 labels per metric here
    assert code == 2 and out.startswith("error: Nothing to calibrate: groundedness:") and "`rag label`" in out
    code, out = rag(app, monkeypatch, capsys, "judge", "calibrate", "--reset")
    assert code == 0 and "no calibration at" in out and "judge_calibration.json" in out
    code, out = rag(app, monkeypatch, capsys, "judge", "groundedness")
    assert code == 2 and "give the JSONL file" in out


def test_label_at_a_terminal_takes_single_keys_without_enter(run, tmp_path):
    """A pseudo-terminal: keys are read one by one in cbreak mode, no Enter; q restores the terminal."""
    import os
    import pty
    import select
    import subprocess
    import sys

    app, results = run
    one = app.spec("basic:top_k=1").name
    database = f"sqlite:///{tmp_path / 'terminal.sqlite'}"
    parent, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "--storage-dir", str(app.config.storage_dir), "label", "--run",
         str(results.paths["dir"]), "--version", one, "--who", "terminal"],
        stdin=child, stdout=child, stderr=child, env={**os.environ, "RAG_DATABASE_URL": database}, close_fds=True)
    os.close(child)
    seen = b""

    def read_until(text: str, timeout: float = 120) -> None:
        nonlocal seen
        while text.encode() not in seen:
            ready, _, _ = select.select([parent], [], [], timeout)
            try:
                more = os.read(parent, 65536) if ready else b""
            except OSError:  # the program ended and closed the terminal
                more = b""
            assert more, f"no {text!r} on the terminal; it shows: {seen.decode(errors='replace')[-600:]}"
            seen += more

    try:
        read_until("answer: c correct")
        for key, then in (("c", "grounded in the contexts?"), ("g", "context 1 relevant?"), ("r", "row 2 of 4"),
                          ("q", "labelled 1, skipped 0")):
            os.write(parent, key.encode())  # no newline: cbreak mode hands each key over at once
            read_until(then)
        # The labels go to the dashboard's copy when the session ends: its record is in the other database.
        read_until("1 labelled answer(s) are no record of this database", timeout=240)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(parent)
    from rag.evaluation.labels import LabelStore

    stored = LabelStore(database).labels()
    assert [(l.metric, l.value, l.annotator) for l in stored] == [
        ("answer", 1, "terminal"), ("groundedness", 1, "terminal"), ("context_relevance", 1, "terminal")]
