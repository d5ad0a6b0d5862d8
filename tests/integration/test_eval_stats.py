"""Honest comparisons end to end: a real evaluation of a sweep (real index, embedder, TruLens, SQLite),
with answers from a fake OpenAI-compatible server at the HTTP boundary so it runs in seconds.

Checked: cut-off metrics and the contexts column, intervals and vs_best, the stored leaderboard equal
to the run's (reference metrics are TruLens feedback results), the gate, and `rag eval --fail-under`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fake_openai import FakeOpenAIServer
from rag.evaluation.questions import load_questions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval_questions" / "sample.jsonl"
QUESTIONS = load_questions(SAMPLE)[:4]
REFERENCE = {q.question: q.reference_answer for q in QUESTIONS}


def reply(body: dict) -> str:
    """The reference answer of the question in the prompt: correctness is then known (1.0)."""
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    for question, answer in REFERENCE.items():
        if question in prompt:
            return answer
    return "I don't know."


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(reply) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(sample_app, server, tmp_path_factory):
    from rag import RAG

    database = tmp_path_factory.mktemp("trulens") / "trulens.sqlite"
    # No pruning: these tests count the contexts a version passes (pruning may drop one).
    return RAG(sample_app.config.replace(llm_provider="openai_like", llm_base_url=server.base_url,
                                         llm_model="fake", judge="lexical", database_url=f"sqlite:///{database}",
                                         context_budget=0))


@pytest.fixture(scope="module")
def results(app, tmp_path_factory):
    from rag.evaluation import evaluate

    return evaluate(app, QUESTIONS, retrievers=["basic:top_k=1|4"], judge="lexical", progress=False,
                    output_dir=tmp_path_factory.mktemp("out"), at=(1, 3))


def test_sweep_versions_with_cutoffs_and_contexts(app, results):
    rows = results.rows
    assert set(rows["retriever"]) == {app.spec("basic:top_k=1").name, app.spec("basic:top_k=4").name}
    assert rows["error"].isna().all() and len(rows) == 2 * len(QUESTIONS)
    assert (rows["n_contexts"] == rows["contexts"].map(len)).all()
    assert (rows["hit_rate@1"] <= rows["hit_rate@3"]).all()
    one = rows[rows["retriever"] == app.spec("basic:top_k=1").name]
    assert (one["n_contexts"] == 1).all()
    assert (one["hit_rate@1"] == one["hit_rate"]).all()  # own k is 1
    assert (rows["correctness"] == 1.0).all()  # the fake server answers with the reference


def test_leaderboard_has_intervals_and_paired_verdict(results):
    board = results.leaderboard
    assert list(board["rank"]) == [1, 2] and board.attrs["ranked_by"] == "correctness"  # the questions have references
    for metric in ("triad", "groundedness", "hit_rate@1", "hit_rate@3", "correctness"):
        assert (board[f"{metric}_n"] == len(QUESTIONS)).all()
        assert (board[f"{metric}_lo"] <= board[metric]).all() and (board[metric] <= board[f"{metric}_hi"]).all()
    assert sorted(board["contexts"]) == [1.0, 4.0]
    assert board["vs_best"].iloc[0] is None
    # Four questions are too few to call a difference (rag/evaluation/stats.py, MIN_PAIRED).
    assert re.search(r"^[+-]\d\.\d{3} \[[+-]\d\.\d\d, [+-]\d\.\d\d\] (within noise|too few questions \(n=4\))$",
                     board["vs_best"].iloc[1])
    text = str(results)
    assert "@3" in text and "vs best" in text and "anked by key-fact correctness" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert results.best().startswith(f"best: {board['retriever'].iloc[0]}")
    assert "<table" in results._repr_html_() and "hit_rate@1" in results._repr_html_()
    stats = results.stats
    assert set(stats["metric"]) >= {"triad", "hit_rate@1", "n_contexts"}
    cited = stats["metric"] == "citation_faithfulness"  # the fake answers (the references) cite no source
    assert (stats.loc[~cited, "n"] == len(QUESTIONS)).all() and (stats.loc[cited, "n"] == 0).all()


def test_stored_leaderboard_is_the_same_table(app, results):
    from rag.evaluation import leaderboard
    from rag.evaluation.trulens.session import open_session

    records, feedback = open_session(app.config).get_records_and_feedback(record_ids=list(results.rows["record_id"]))
    assert {"hit_rate@1", "hit_rate@3", "correctness", "mrr", "n_contexts"} <= set(feedback)

    stored = leaderboard(app.config)
    board = results.leaderboard
    assert list(stored["version"]) == list(board["version"])
    assert list(stored["records"]) == [len(QUESTIONS)] * 2
    for metric in ("context_relevance", "groundedness", "answer_relevance", "triad", "correctness", "hit_rate",
                   "mrr", "ndcg", "hit_rate@1", "hit_rate@3", "ndcg@3", "contexts"):
        for col in (metric, f"{metric}_lo", f"{metric}_hi"):
            assert stored[col].tolist() == pytest.approx(board[col].tolist()), col
    assert stored["vs_best"].tolist() == board["vs_best"].tolist()


def test_gate_verdicts(results):
    assert results.gate({"correctness": 1.0, "hit_rate@3": 0.0}).passed
    verdict = results.gate(["groundedness=1.01"])
    assert not verdict.passed and len(verdict.failures) == 2
    assert str(verdict).startswith("gate FAILED (2 of 2 checks)")


def test_cli_fail_under_exits_4_with_a_verdict(app, capsys, tmp_path):
    from rag.cli import main

    common = ["--storage-dir", str(app.config.storage_dir), "--llm-provider", "openai_like",
              "--llm-base-url", app.config.llm_base_url, "--llm-model", "fake", "eval", "-q", str(SAMPLE),
              "--limit", "2", "-r", "basic", "--judge", "lexical", "--output", str(tmp_path / "out")]
    assert main([*common, "--fail-under", "correctness=0.9", "--fail-under", "hit_rate@2=0.5"]) == 0
    out = capsys.readouterr().out
    assert "gate passed" in out and "pass hit_rate@2 >= 0.5" in out and "@2" in out.split("gate")[0]

    assert main([*common, "--fail-under", "groundedness=1.01", "--json"]) == 4
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["gate"]["passed"] is False and "FAIL groundedness >= 1.01" in data["gate"]["verdict"]
    assert "gate check(s) failed" in captured.err

    assert main([*common, "--fail-under", "speed=3"]) == 2
    assert "--fail-under speed: unknown metric" in capsys.readouterr().err


def test_cli_grid_file_sweeps(app, capsys, tmp_path):
    from rag.cli import main

    grid = tmp_path / "grid.toml"
    grid.write_text("[basic]\ntop_k = [1, 2]\n")
    common = ["--storage-dir", str(app.config.storage_dir), "--llm-provider", "openai_like",
              "--llm-base-url", app.config.llm_base_url, "--llm-model", "fake", "eval", "-q", str(SAMPLE),
              "--limit", "2", "--judge", "lexical", "--output", str(tmp_path / "out")]
    assert main([*common, "--grid", str(grid), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(row["contexts"] for row in data["leaderboard"]) == [1.0, 2.0]
    assert data["best"].startswith("best: basic[") and "than the runner-up" in data["best"]

    grid.write_text("[basic\n")
    assert main([*common, "--grid", str(grid)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_cli_leaderboard_prints_the_stored_table(app, results, capsys, monkeypatch):
    from rag.cli import main

    monkeypatch.setenv("RAG_DATABASE_URL", app.config.database_url)
    assert main(["--storage-dir", str(app.config.storage_dir), "leaderboard"]) == 0
    out = capsys.readouterr().out
    board = results.leaderboard
    assert "@3" in out and "vs best" in out and "anked by key-fact correctness" in out
    for rank, retriever, triad in zip(board["rank"], board["retriever"], board["triad"]):
        line = next(line for line in out.splitlines() if line.startswith(f"{rank} "))
        assert retriever.split("[")[0] in line and f"{triad:.3f}" in line  # the same mean as `rag eval` printed


def test_screening_answers_only_the_versions_it_keeps(app, capsys, tmp_path):
    from rag.cli import main
    from rag.evaluation import evaluate

    versions = ["basic", "sentence_window:top_k=1,rerank_top_n=none,window_size=1"]
    results = evaluate(app, SAMPLE, retrievers=versions, judge="lexical", progress=True, limit=2, screen=True,
                       output_dir=tmp_path / "api")
    screening = results.screening
    assert [v.spec.name for v in screening.versions] == [app.spec(v).name for v in versions]
    assert screening.questions == 12  # all of the file's questions with evidence, not just the 2 answered
    assert all(len(v.ndcg) == 12 and 0 <= v.estimate.mean <= 1 for v in screening.versions)
    assert set(results.rows["retriever"]) == {spec.name for spec in screening.kept}
    assert len(results.rows) == 2 * len(screening.kept)
    assert "Screening: retrieval only, 12 questions" in capsys.readouterr().err

    common = ["--storage-dir", str(app.config.storage_dir), "--llm-provider", "openai_like",
              "--llm-base-url", app.config.llm_base_url, "--llm-model", "fake", "eval", "-q", str(SAMPLE),
              "--limit", "1", "--judge", "lexical", "--output", str(tmp_path / "cli"), "--json"]
    assert main([*common, "-r", "basic", "-r", versions[1], "--screen"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["screened_out"], list)
    assert len(data["leaderboard"]) + len(data["screened_out"]) == 2

    no_evidence = tmp_path / "plain.txt"
    no_evidence.write_text("How many days of sick leave?\n")
    assert main([*common, "-r", "basic", "--screen", str(no_evidence)]) == 2
    assert "Screening needs questions with evidence pages" in capsys.readouterr().err


def test_early_stopping_stops_the_version_that_keeps_losing(app, capsys, tmp_path):
    """A fake model that answers right only when it sees more than one source: top_k=1 loses every question."""
    from rag import RAG
    from rag.cli import main
    from rag.evaluation import evaluate

    everything = {q.question: q.reference_answer for q in load_questions(SAMPLE)}

    def needs_two_sources(body: dict) -> str:
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        if "[2]" not in prompt:
            return "I could not find it in the documents."
        return next((f"{a} [1]" for q, a in everything.items() if q in prompt), "I don't know.")

    with FakeOpenAIServer(needs_two_sources) as fake:
        picky = RAG(app.config.replace(llm_base_url=fake.base_url))
        versions = ["basic:top_k=4", "basic:top_k=1"]
        results = evaluate(picky, SAMPLE, retrievers=versions, judge="lexical", progress=True, early_stop=True,
                           output_dir=tmp_path / "api")
        err = capsys.readouterr().err
        stopping = results.early_stopping
        assert [s.version for s in stopping.stopped] == [results.rows["version"].iloc[-1]]
        stop = stopping.stopped[0]
        assert stop.after == 8 and stop.worse == 8 and stop.better == 0  # the look after 8 of 12 questions
        counts = results.rows.groupby("retriever").size().to_dict()
        assert counts == {picky.spec("basic:top_k=4").name: 12, picky.spec("basic:top_k=1").name: 8}
        stopped_after = results.leaderboard["stopped_after"]
        assert stopped_after.isna().iloc[0] and stopped_after.iloc[1] == 8  # the stopped version ranks last
        assert "stopped after 8 questions" in err and "worse than" in err
        # Why the stopped version was wrong: it declined every time.
        by_kind = results.rows.groupby("retriever")["diagnosis"].agg(set).to_dict()
        assert by_kind == {picky.spec("basic:top_k=4").name: {"right"}, picky.spec("basic:top_k=1").name: {"abstained"}}
        assert list(results.leaderboard["abstained"]) == [0, 8]
        assert "wrong: 8 abstained" in results.agreement().to_string()
        # Each cited answer's [1] is checked against source 1 (real embedder and word judge); abstentions cite nothing.
        cites = results.rows.set_index("retriever")["citation_faithfulness_reason"]
        assert cites[picky.spec("basic:top_k=4").name].str.match(r"[01] of 1 citing sentences supported").all()
        assert (cites[picky.spec("basic:top_k=1").name] == "The answer cites no source.").all()
        # What the stopped version answered is judged like the rest.
        assert set(results.rows.loc[results.rows["retriever"].str.contains("top_k=1"), "groundedness"].notna()) == {True}

        common = ["--storage-dir", str(app.config.storage_dir), "--llm-provider", "openai_like",
                  "--llm-base-url", fake.base_url, "--llm-model", "fake", "eval", "-q", str(SAMPLE), "--judge",
                  "lexical", "--output", str(tmp_path / "cli"), "--json", "-r", versions[0], "-r", versions[1],
                  "--early-stop", "--limit", "4"]
        assert main(common) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["early_stopped"] == []  # 4 questions: too few to stop anything
