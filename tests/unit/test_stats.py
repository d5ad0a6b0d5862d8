"""Intervals, paired comparisons, the leaderboard built on them, the CI gate and sweep expansion,
on hand-made rows whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from rag.errors import ConfigError
from rag.evaluation.gate import check, gate_cutoffs, parse_thresholds
from rag.evaluation.ranking import display, from_rows, shown_columns
from rag.evaluation.stats import compare, estimate, paired, summarize
from rag.evaluation.sweep import best_line, expand

TRIAD = ("context_relevance", "groundedness", "answer_relevance")


def rows(version, scores, hits=None, errors=0, questions=None):
    questions = questions or [f"q{i}" for i in range(len(scores))]
    out = []
    for i, (q, s) in enumerate(zip(questions, scores)):
        row = {"version": version, "retriever": version, "kind": "basic", "judge": "lexical", "question": q,
               **{c: s for c in TRIAD}, "correctness": s, "n_contexts": 2, "latency_s": 1.0, "error": None}
        if hits is not None:
            row.update({"hit_rate": hits[i], "hit_rate@1": hits[i], "hit_rate@5": 1.0})
        out.append(row)
    out += [{"version": version, "retriever": version, "kind": "basic", "judge": "lexical",
             "question": f"failed{j}", "error": "APIConnectionError: down"} for j in range(errors)]
    return out


def test_estimate_mean_and_interval():
    e = estimate([0.0, 1.0] * 50)
    assert e.n == 100 and e.mean == pytest.approx(0.5)
    # The standard error of a 0/1 mean at p=0.5, n=100 is 0.05: the 95% interval is about +-0.1.
    assert 0.38 < e.lo < 0.42 and 0.58 < e.hi < 0.62
    assert estimate([0.0, 1.0] * 50) == e  # seeded: the same data gives the same interval


def test_estimate_leaves_out_missing_values_and_needs_two():
    e = estimate([0.5, None, float("nan"), "n/a", 0.7])
    assert e.n == 2 and e.mean == pytest.approx(0.6) and 0.5 <= e.lo <= e.hi <= 0.7
    one = estimate([0.9, None])
    assert (one.n, one.mean, one.lo, one.hi) == (1, 0.9, None, None)
    assert estimate([]).mean is None and str(estimate([])) == "n/a"


def test_paired_difference_cancels_question_difficulty():
    # B is always exactly 0.05 below A, on questions whose difficulty varies a lot.
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.9, 30)
    a = {i: v + 0.05 for i, v in enumerate(base)}
    b = {i: v for i, v in enumerate(base)}
    d = paired(a, b)
    assert d.n == 30 and d.mean == pytest.approx(0.05) and d.lo == pytest.approx(0.05)
    assert not d.within_noise and d.verdict == "better"
    assert paired(b, a).verdict == "worse"
    # Unpaired, the same 0.05 is lost in the spread between questions.
    assert estimate(list(a.values())).lo < estimate(list(b.values())).hi


def test_paired_difference_of_noise_is_within_noise_and_uses_shared_questions_only():
    a = {"x": 1.0, "y": 0.0, "z": 1.0, "w": 0.0, "only_a": 1.0}
    b = {"x": 0.0, "y": 1.0, "z": 1.0, "w": 0.0, "only_b": 0.0}
    d = paired(a, b)
    assert d.n == 4 and d.mean == 0.0 and d.within_noise and "within noise" in str(d)
    assert paired({"x": 1.0}, {"y": 1.0}).verdict == "no shared questions"


def test_leaderboard_has_n_mean_interval_contexts_and_cutoffs():
    frame = pd.DataFrame(rows("good", [0.9, 0.8, 0.9, 0.7, 0.9, 0.8], hits=[1, 1, 0, 1, 1, 1])
                         + rows("bad", [0.2, 0.3, 0.1, 0.2, 0.1, 0.3], hits=[0, 0, 0, 1, 0, 1], errors=1))
    board = from_rows(frame)
    assert list(board["retriever"]) == ["good", "bad"]
    bad = board.iloc[1]
    assert bad["questions"] == 7 and bad["errors"] == 1 and bad["triad_n"] == 6  # the failed row is not averaged in
    assert bad["triad"] == pytest.approx(0.2) and bad["triad_lo"] <= 0.2 <= bad["triad_hi"]
    assert bad["hit_rate@1"] == pytest.approx(2 / 6) and bad["hit_rate@5"] == 1.0
    assert bad["contexts"] == 2.0
    assert "worse" in bad["vs_best"] and board.iloc[0]["vs_best"] is None
    assert board.attrs["ranked_by"] == "correctness"  # the rows have reference answers
    text = display(board, ["rank", "retriever", "contexts", "triad", "hit_rate@1", "vs_best"])
    half = (bad["triad_hi"] - bad["triad_lo"]) / 2
    assert "0.200" in text and f"±{half:.2f}" in text
    assert "Ranked by key-fact correctness" in text and "worse" in text


def test_the_printed_board_fits_100_columns_and_keeps_every_retriever_parameter():
    long = "auto_merging[chunk_sizes=2048/512/128,top_k=12,rerank_top_n=6,merge_ratio=0.5,mode=hybrid]"
    frame = pd.DataFrame(rows(long, [0.9, 0.8, 0.9, 0.7], hits=[1, 1, 0, 1])
                         + rows("basic[top_k=4]", [0.2, 0.3, 0.1, 0.2], hits=[0, 0, 0, 1]))
    frame["judge"] = "local:probability:qwen2.5-coder-1.5b+lexical"
    frame["hit_rate@2"] = frame["hit_rate@1"]
    board = from_rows(frame)
    text = display(board, shown_columns(board))
    assert max(len(line) for line in text.splitlines()) <= 100, text
    for part in long.replace("[", " [").split(","):  # wrapped at its commas, never cut
        assert part.split()[-1] in text, text
    assert text.splitlines()[0].startswith("judge: local:probability")  # shared settings once, above the table
    assert "@2" in text and "0.850\n" not in text  # the cut-off column, and no interval glued to a score


def test_close_versions_are_reported_within_noise():
    frame = pd.DataFrame(rows("a", [0.6, 0.4, 0.7, 0.6]) + rows("b", [0.5, 0.5, 0.6, 0.6]))
    board = from_rows(frame)
    assert "within noise" in board.iloc[1]["vs_best"]
    line = best_line(board)
    assert line.startswith("best: a") and "NOT significantly better" in line


def test_summarize_and_compare_on_rows():
    frame = pd.DataFrame(rows("a", [1.0] * 6) + rows("b", [0.0] * 6))
    table = summarize(frame, ["correctness"])
    assert table.set_index("version").loc["a", "mean"] == 1.0 and set(table["n"]) == {6}
    d = compare(frame, "a", "b", "correctness")
    assert (d.n, d.mean, d.verdict) == (6, 1.0, "better")


def test_a_difference_on_too_few_questions_is_not_called():
    # Two questions both lower: the bootstrap interval excludes 0, but two same-sign differences
    # happen by chance half the time.
    d = paired({"x": 0.2, "y": 0.3}, {"x": 0.9, "y": 0.8})
    assert d.lo is not None and d.hi < 0
    assert d.within_noise and d.verdict == "too few questions (n=2)" and "worse" not in str(d)
    frame = pd.DataFrame(rows("a", [0.9, 0.8]) + rows("b", [0.2, 0.3]))
    line = best_line(from_rows(frame))
    assert "too few questions" in line and "NOT significantly better" in line


def test_gate_compares_each_versions_mean():
    frame = pd.DataFrame(rows("good", [0.9, 0.8, 0.9, 0.7], hits=[1, 1, 0, 1])
                         + rows("bad", [0.2, 0.3, 0.1, 0.2], hits=[0, 0, 0, 1]))
    board = from_rows(frame)
    only_good = board[board["retriever"] == "good"]
    assert check(only_good, ["groundedness=0.7", "hit_rate@5=0.8"]).passed
    verdict = check(board, {"groundedness": 0.7})
    assert not verdict.passed and [c.version for c in verdict.failures] == ["bad"]
    text = str(verdict)
    assert "gate FAILED (1 of 2 checks)" in text and "FAIL groundedness >= 0.7: mean 0.200" in text
    missing = check(only_good, ["ndcg@3=0.1"])  # never computed: fails, never passes on nothing
    assert not missing.passed and "no values" in str(missing)


@pytest.mark.parametrize("bad", ["groundedness", "groundedness=high", "speed=1", "hit_rate@=1"])
def test_gate_rejects_bad_thresholds_with_a_clear_message(bad):
    with pytest.raises(ConfigError, match="--fail-under"):
        parse_thresholds([bad])


def test_gate_cutoffs():
    assert gate_cutoffs(parse_thresholds(["hit_rate@5=0.8", "ndcg@10=0.5", "mrr=0.3"])) == [5, 10]


def test_sweep_expands_every_combination():
    assert expand(["basic", "sentence_window:window_size=1|3|5"]) == [
        "basic", "sentence_window:window_size=1", "sentence_window:window_size=3", "sentence_window:window_size=5"]
    assert expand(["auto_merging:chunk_sizes=2048,512|2048,512,128"]) == [
        "auto_merging:chunk_sizes=2048,512", "auto_merging:chunk_sizes=2048,512,128"]
    assert len(expand(["basic:top_k=2|4,rerank_top_n=1|2"])) == 4
    with pytest.raises(ConfigError, match="empty alternative"):
        expand(["basic:top_k=2||4"])


def test_grid_file_expands_like_the_spec_syntax(tmp_path):
    from rag.evaluation.sweep import grid_specs

    grid = tmp_path / "grid.toml"
    grid.write_text("[basic]\n\n[sentence_window]\nwindow_size = [1, 3]\n\n"
                    "[auto_merging]\nchunk_sizes = [[2048, 512], [2048, 512, 128]]\nrerank_top_n = 4\n")
    specs = grid_specs(grid)
    assert specs == ["basic", "sentence_window:window_size=1|3",
                     "auto_merging:chunk_sizes=2048,512|2048,512,128,rerank_top_n=4"]
    assert expand(specs)[1:] == ["sentence_window:window_size=1", "sentence_window:window_size=3",
                                 "auto_merging:chunk_sizes=2048,512,rerank_top_n=4",
                                 "auto_merging:chunk_sizes=2048,512,128,rerank_top_n=4"]
    grid.write_text("[sentence_window\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        grid_specs(grid)
    with pytest.raises(ConfigError, match="does not exist"):
        grid_specs(tmp_path / "none.toml")
