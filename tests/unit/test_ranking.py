import pandas as pd

from rag.evaluation.ranking import display, from_rows, parse_version, rank, version_name


def rows(version, triad_scores, errors=0):
    out = [{"version": version, "retriever": version.split(" ")[0], "kind": "basic", "judge": "lexical",
            "context_relevance": s, "groundedness": s, "answer_relevance": s, "correctness": s, "latency_s": 1.0,
            "error": None} for s in triad_scores]
    out += [{"version": version, "retriever": version.split(" ")[0], "kind": "basic", "judge": "lexical",
             "error": "APIConnectionError: down"} for _ in range(errors)]
    return out


def test_leaderboard_ranks_by_triad_and_counts_errors():
    frame = pd.DataFrame(rows("a llm=x judge=lexical", [0.2, 0.4]) + rows("b llm=x judge=lexical", [0.9, 0.7], errors=1))
    board = from_rows(frame)
    assert list(board["retriever"]) == ["b", "a"] and list(board["rank"]) == [1, 2]
    b = board.iloc[0]
    assert b["questions"] == 3 and b["errors"] == 1
    assert abs(b["triad"] - 0.8) < 1e-9  # failed rows are not averaged in as zeros


def test_rank_breaks_ties_by_correctness_then_speed():
    df = pd.DataFrame([{"triad": 0.5, "correctness": 0.1, "latency_s": 1.0},
                       {"triad": 0.5, "correctness": 0.9, "latency_s": 9.0},
                       {"triad": 0.5, "correctness": 0.9, "latency_s": 2.0}])
    assert list(rank(df)["latency_s"]) == [2.0, 9.0, 1.0]


def test_version_names_round_trip():
    name = version_name("sentence_window[window_size=1]", "qwen2.5-coder-1.5b", "openai:gpt-4o@127.0.0.1:8000")
    assert parse_version(name) == {"retriever": "sentence_window[window_size=1]", "llm": "qwen2.5-coder-1.5b",
                                   "judge": "openai:gpt-4o@127.0.0.1:8000"}


def scored(version, triad, correctness):
    """Rows whose triad and key-fact correctness disagree on which version is better."""
    return [{"version": version, "retriever": version, "kind": "basic", "judge": "lexical", "question": f"q{i}",
             "context_relevance": t, "groundedness": t, "answer_relevance": t, "correctness": c, "latency_s": 1.0,
             "error": None} for i, (t, c) in enumerate(zip(triad, correctness))]


def test_reference_answers_rank_by_key_fact_correctness_and_the_triad_without_them():
    from rag.evaluation.ranking import ranking_metric
    from rag.evaluation.sweep import best_line

    # "fluent" pleases the judge but states the wrong facts; "right" states them.
    frame = pd.DataFrame(scored("fluent", [0.9] * 8, [0.3, 0.0] * 4) + scored("right", [0.6] * 8, [1.0] * 8))
    board = from_rows(frame)
    assert list(board["retriever"]) == ["right", "fluent"]
    assert board.attrs["ranked_by"] == "correctness" == ranking_metric(board)
    assert board.iloc[1]["vs_best"].startswith("-0.850")  # paired on correctness, the metric that ranked
    line = best_line(board)
    assert line.startswith("best: right (correctness 1.000") and "ranked by key-fact correctness" in line
    assert "Ranked by key-fact correctness" in " ".join(display(board, ["rank", "retriever", "correctness"]).split())

    no_reference = from_rows(frame.drop(columns=["correctness"]))
    assert list(no_reference["retriever"]) == ["fluent", "right"]
    assert no_reference.attrs["ranked_by"] == "triad" == ranking_metric(no_reference)
    assert no_reference.iloc[1]["vs_best"].startswith("-0.300")
    assert "ranked by the RAG triad (no reference answers)" in best_line(no_reference)
    text = " ".join(display(no_reference, ["rank", "retriever", "triad"]).split())
    assert "Ranked by the RAG triad (no reference answers)" in text
    # A correctness column with no values (no question had a reference) ranks by the triad too.
    empty = from_rows(frame.assign(correctness=None))
    assert empty.attrs["ranked_by"] == "triad" and list(empty["retriever"]) == ["fluent", "right"]


def test_equal_correctness_is_ordered_by_the_triad():
    df = pd.DataFrame([{"triad": 0.4, "correctness": 1.0, "latency_s": 1.0},
                       {"triad": 0.8, "correctness": 1.0, "latency_s": 9.0},
                       {"triad": 0.9, "correctness": 0.3, "latency_s": 1.0}])
    assert list(rank(df)["triad"]) == [0.8, 0.4, 0.9]
