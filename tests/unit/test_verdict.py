"""The run checks itself: answers right by key facts per version, and judges that disagree."""

import pandas as pd

from rag.evaluation.ranking import from_rows
from rag.evaluation.run import EvaluationResults
from rag.evaluation.verdict import RIGHT_AT, agreement


def row(version, question, correctness, groundedness, answer_relevance, error=None, reason=""):
    return {"version": f"{version} llm=x judge=lexical", "retriever": version, "question": question,
            "context_relevance": 0.5, "groundedness": groundedness, "answer_relevance": answer_relevance,
            "correctness": correctness, "correctness_reason": reason, "error": error}


ROWS = pd.DataFrame([
    row("basic", "sick leave?", 1.0, 0.9, 0.9),  # right, both judges pass it: no flag
    row("basic", "approver?", 0.0, 0.8, 0.4,  # wrong: groundedness passes it (flag), relevance fails it
        reason='missing "Department director"; answer says CFO'),
    row("basic", "password?", 0.5, 0.2, 0.9),  # 0.5 counts as right: groundedness fails it (flag)
    row("basic", "failed", None, None, None, error="APIConnectionError: down"),
    row("window", "sick leave?", 0.3, 0.3, 0.7),  # wrong but on the question: relevance passing it is no flag
    row("window", "approver?", None, 0.9, 0.9),  # no reference: not counted, never flagged
])


def test_counts_right_answers_per_version_with_the_threshold():
    report = agreement(ROWS)
    assert RIGHT_AT == 0.5
    tallies = {t.retriever: (t.right, t.scored, t.unscored) for t in report.tallies}
    assert tallies == {"basic": (2, 3, 1), "window": (0, 1, 1)}
    assert agreement(ROWS, right_at=0.6).tallies[0].right == 1  # 0.5 is then wrong


def test_flags_each_judge_that_disagrees_with_key_fact_correctness():
    flags = agreement(ROWS).flags
    assert [(f.retriever, f.question, f.judge, f.passes_wrong) for f in flags] == [
        ("basic", "approver?", "groundedness", True),
        ("basic", "password?", "groundedness", False)]
    assert "answer says CFO" in str(flags[0]) and "on a wrong answer" in str(flags[0])
    assert "on a right answer" in str(flags[1])


def test_answer_relevance_is_flagged_only_for_failing_a_right_answer():
    rows = pd.DataFrame([row("basic", "right", 1.0, 0.9, 0.2), row("basic", "wrong", 0.0, 0.1, 0.9)])
    assert [(f.question, f.judge) for f in agreement(rows).flags] == [("right", "answer_relevance")]


def test_the_report_prints_counts_flags_and_the_rule():
    text = agreement(ROWS).to_string()
    assert "correctness >= 0.5 counts as right" in text
    assert "basic: 2 of 3 right (1 not scored)" in text and "window: 0 of 1 right (1 not scored)" in text
    assert "disagree with key-fact correctness (2)" in text and "groundedness 0.80 on a wrong answer" in text
    assert len(agreement(ROWS).to_string(limit=1).splitlines()) == 6  # header, 2 tallies, title, 1 flag, "more"
    agreeing = agreement(ROWS[ROWS["question"] == "sick leave?"].iloc[:1])
    assert not agreeing.flags and "agree with key-fact correctness on every answer" in agreeing.to_string()
    data = agreement(ROWS).as_dict()
    assert data["right_at"] == 0.5 and len(data["flags"]) == 2 and data["versions"][0]["right"] == 2


def test_without_reference_answers_there_is_nothing_to_check():
    report = agreement(ROWS.assign(correctness=None))
    assert not report.checked and not report.flags
    assert "no answer has a reference answer" in report.to_string()
    assert not agreement(pd.DataFrame()).checked


def test_evaluation_results_expose_the_agreement():
    results = EvaluationResults(rows=ROWS, leaderboard=from_rows(ROWS))
    report = results.agreement()
    assert [t.right for t in report.tallies] == [2, 0] and len(report.flags) == 2
    assert results.agreement(right_at=0.2).tallies[1].right == 1


def test_rag_eval_prints_the_agreement_after_the_leaderboard(monkeypatch, capsys, tmp_path):
    import rag.cli
    import rag.evaluation.run
    from rag import RAG, Config

    results = EvaluationResults(rows=ROWS, leaderboard=from_rows(ROWS))
    monkeypatch.setattr(rag.cli, "_app", lambda args: RAG(Config(storage_dir=tmp_path)))  # evaluates nothing: see below
    monkeypatch.setattr(rag.evaluation.run, "evaluate", lambda *a, **kw: results)
    rag.cli.main(["eval", "-q", str(tmp_path / "q.jsonl"), "--storage-dir", str(tmp_path)])
    out = capsys.readouterr().out
    board, verdict = out.index("Ranked by key-fact correctness"), out.index("Right by key facts")
    assert board < verdict and "basic: 2 of 3 right" in out and "ranked by key-fact correctness" in out


def test_each_version_says_why_its_wrong_answers_are_wrong():
    table = "Leave type: Sick leave | Entitlement: 10 working days."
    rows = pd.DataFrame([
        {**row("basic", "sick?", 0.0, 0.5, 0.5), "answer": "25 working days.", "contexts": [table],
         "reference_answer": "10 working days."},  # the row was there: the generator misread it
        {**row("basic", "sick 2?", 0.0, 0.5, 0.5), "answer": "25 working days.", "contexts": ["Annual leave: 25 days"],
         "reference_answer": "10 working days."},  # never retrieved
        {**row("basic", "sick 3?", 0.0, 0.5, 0.5), "answer": "x", "diagnosis": "abstained"},  # stored wins
    ])
    tally = agreement(rows).tallies[0]
    assert tally.misses == {"retrieval_miss": 1, "generation_miss": 1, "abstained": 1}
    assert str(tally).endswith("wrong: 1 retrieval miss, 1 generation miss, 1 abstained")
    assert agreement(rows).as_dict()["versions"][0]["misses"]["generation_miss"] == 1
