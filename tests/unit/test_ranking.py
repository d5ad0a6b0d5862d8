import pandas as pd

from rag.evaluation.ranking import from_rows, parse_version, rank, version_name


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
