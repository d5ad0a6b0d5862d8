"""The probability judge's own logic, with a fake engine (chosen P(yes)) and a fake embedder."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import pytest

from rag.evaluation.judges.probability import (
    COEFFICIENTS,
    FEATURES,
    GROUNDED_SUFFIX,
    ProbabilityJudge,
    numbers,
    p_yes,
    split_claims,
)

pytestmark = pytest.mark.unit


def fake_embed(texts):
    """Bag of words hashed into 256 dimensions, L2-normalised."""
    rows = np.zeros((len(texts), 256), dtype="float32")
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            rows[i, zlib.crc32(word.encode()) % 256] += 1.0
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


def response(p: float | None, *, other: float = 0.0) -> dict:
    """A llama.cpp-shaped chat answer whose first token is Yes with probability p (No otherwise)."""
    top = [] if p is None else [{"token": "Yes", "logprob": math.log(max(p, 1e-12))},
                                {"token": "No", "logprob": math.log(max(1 - p, 1e-12))}]
    if other:
        top.append({"token": "The", "logprob": math.log(other)})
    return {"choices": [{"logprobs": {"content": [{"token": "Yes", "top_logprobs": top}]}}],
            "timings": {"prompt_n": 5, "cache_n": 50, "prompt_ms": 1.0}}


class FakeEngine:
    """P(yes) chosen per statement: the first key of ``answers`` found in the text being judged."""

    context_window = 4096

    def __init__(self, answers: dict[str, float] | None = None, default: float = 0.9, window: int | None = None):
        self.answers = answers or {}
        self.default = default
        self.prompts: list[str] = []
        if window:
            self.context_window = window

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat(self, messages, *, max_tokens, temperature=0.0, stop=None, logprobs=False, top_logprobs=0, seed=0):
        assert max_tokens == 1 and logprobs and top_logprobs > 0
        user = messages[-1]["content"]
        self.prompts.append(user)
        judged = user.rsplit("Statement: ", 1)[-1].rsplit("Passage:\n", 1)[-1].rsplit("Response: ", 1)[-1]
        for key, p in self.answers.items():
            if key in judged:
                return response(p)
        return response(self.default)


CONTEXT = ("The Norfield library opens at 9 am on weekdays and at 10 am on Saturdays. "
           "It is closed on Sundays. It was founded in 1921 by Helen Carter.")


def judge(answers=None, default=0.9, window=None) -> tuple[ProbabilityJudge, FakeEngine]:
    engine = FakeEngine(answers, default, window)
    return ProbabilityJudge(engine, fake_embed, context_window=window), engine


# ---------------------------------------------------------------- pieces

def test_p_yes_normalises_yes_against_no_and_ignores_other_tokens():
    assert p_yes(response(0.8, other=0.5)) == pytest.approx(0.8)
    assert p_yes(response(None)) == 0.5  # neither yes nor no: no evidence
    lower = {"choices": [{"logprobs": {"content": [{"top_logprobs": [
        {"token": " yes", "logprob": math.log(0.3)}, {"token": "YES", "logprob": math.log(0.3)},
        {"token": "no", "logprob": math.log(0.4)}]}]}}]}
    assert p_yes(lower) == pytest.approx(0.6)
    assert p_yes({}) == 0.5


def test_split_claims_drops_abstentions_and_joins_fragments():
    answer = "Yes. The library opens at 9 am on weekdays. It is closed on Sundays. The context does not mention parking."
    assert split_claims(answer) == ["Yes. The library opens at 9 am on weekdays.", "It is closed on Sundays."]
    assert split_claims("The context does not contain that information.") == []
    assert split_claims("It opens at nine in the morning. Truly.") == ["It opens at nine in the morning. Truly."]


def test_split_claims_leaves_out_source_lists_and_plans_and_keeps_the_conclusion():
    answer = ("To determine who must approve a claim of $3,200, we need to look at the approval thresholds.\n"
              "Let's look at the table.\n"
              "The Department director approves claims from $500.01 to $5,000. This is stated in the following sources:\n"
              '[1] on page 5, under "4. Expenses" and "4.4 Approval thresholds"\n'
              "- Source [2]: page 2\n"
              "Therefore, the answer is: The Department director must approve it.")
    assert split_claims(answer) == ["The Department director approves claims from $500.01 to $5,000.",
                                    "The Department director must approve it."]
    # A long sentence that starts like a plan but states facts stays a claim.
    long = ("To determine the limit, we need to know that hotels are capped at $180 per night in London, $150 in "
            "other cities, $120 elsewhere, and that meals are paid at $90 per day, with receipts for every item "
            "over $25 and approval by the line manager for anything else.")
    assert split_claims(long) == [long]


def test_split_claims_caps_the_number_of_checks():
    answer = " ".join(f"Sentence number {i} says something." for i in range(30))
    claims = split_claims(answer, max_claims=12)
    assert len(claims) <= 12
    assert " ".join(claims) == answer


def test_numbers_are_read_like_the_lexical_judge():
    assert numbers("It cost 1,000 dollars over two years, 3.50 each") == {"1000", "2", "3.5"}


# ---------------------------------------------------------------- groundedness

def test_abstention_is_grounded_without_asking_the_model():
    j, engine = judge()
    score, reason = j.groundedness([CONTEXT], "I don't know. The context does not mention it.")
    assert score == 1.0 and "abstains" in reason
    assert engine.prompts == []


def test_empty_answer_and_missing_context_are_not_grounded():
    j, engine = judge()
    assert j.groundedness([CONTEXT], "  ")[0] == 0.0
    assert j.groundedness([], "The library opens at 9 am on weekdays.")[0] == 0.0
    assert engine.prompts == []


def test_one_check_per_claim_against_its_own_evidence():
    j, engine = judge()
    _, reason = j.groundedness([CONTEXT], "The library opens at 9 am on weekdays. It is closed on Sundays.")
    assert len(engine.prompts) == 2
    assert all(p.endswith(GROUNDED_SUFFIX) for p in engine.prompts)
    assert j.stats["checks"] == 2
    assert "of 2 claims supported" in reason and "evidence:" in reason  # per-claim verdicts and evidence


def test_the_question_heads_each_claim_check_when_it_is_known():
    """A claim restating what was asked ("a full-time employee gets ...") is read with the question;
    without one (the calibration sets), the prompt is the same as ever."""
    j, engine = judge()
    j.groundedness([CONTEXT], "The library opens at 10 am on Saturdays.", question="When does it open on Saturdays?")
    j.groundedness([CONTEXT], "The library opens at 10 am on Saturdays.")
    asked, plain = engine.prompts
    assert asked.startswith("Question: When does it open on Saturdays?\n\nSource:\n")
    assert plain.startswith("Source:\n") and asked.endswith(plain.split("Source:\n", 1)[1])


def test_weakest_claim_sets_the_score_and_is_named():
    answer = "The library opens at 9 am on weekdays. It was founded in 1921 by Helen Carter."
    good, _ = judge(default=0.95)[0].groundedness([CONTEXT], answer)
    j, _ = judge({"founded": 0.05}, default=0.95)
    bad, reason = j.groundedness([CONTEXT], answer)
    assert bad < good
    assert bad < 0.5 <= good
    assert "founded in 1921" in reason and "0.05" in reason
    # The weakest claim decides: a second strong claim does not rescue it.
    worse, _ = j.groundedness([CONTEXT], "It was founded in 1921 by Helen Carter.")
    assert abs(worse - bad) < 0.25


@pytest.mark.parametrize("metric", ["groundedness", "context_relevance", "answer_relevance"])
def test_scores_are_in_unit_interval_and_rise_with_p_yes(metric):
    scores = []
    for p in (0.0, 0.01, 0.2, 0.5, 0.8, 0.99, 1.0):
        j, _ = judge(default=p)
        if metric == "groundedness":
            s, reason = j.groundedness([CONTEXT], "The library opens at 9 am on weekdays.")
        elif metric == "context_relevance":
            s, reason = j.context_relevance("When does the library open on weekdays?", CONTEXT)
        else:
            s, reason = j.answer_relevance("When does the library open on weekdays?", "At 9 am.")
        assert 0.0 <= s <= 1.0 and reason
        scores.append(s)
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]


def test_llm_weights_are_non_negative():
    for metric, names in FEATURES.items():
        weights = COEFFICIENTS[metric]["weights"]
        assert len(weights) == len(names)
        for name, weight in zip(names, weights):
            if name in ("logit", "min_logit", "mean_logit"):
                assert weight >= 0, (metric, name)


def test_number_missing_from_the_context_lowers_the_score():
    j, _ = judge(default=0.7)
    right, _ = j.groundedness([CONTEXT], "The library was founded in 1921 by Helen Carter.")
    wrong, reason = j.groundedness([CONTEXT], "The library was founded in 1912 by Helen Carter.")
    assert wrong < right
    assert "1912" in reason


# ---------------------------------------------------------------- relevance

def test_refusal_is_not_answer_relevant():
    j, engine = judge(default=0.99)
    score, reason = j.answer_relevance("When does it open?", "The context does not contain that information.")
    assert score == 0.0 and "declines" in reason
    assert engine.prompts == []


def test_context_relevance_reason_and_prefix():
    j, engine = judge({"museum": 0.1}, default=0.9)
    relevant, reason = j.context_relevance("When does the library open on weekdays?", CONTEXT)
    assert "P(yes) 0.90" in reason and "key question words" in reason
    irrelevant, _ = j.context_relevance("When does the library open on weekdays?", "The museum has a cafe.")
    assert irrelevant < relevant
    assert engine.prompts[0].startswith("Question: When does the library open on weekdays?")
    assert j.context_relevance("", CONTEXT)[0] == 0.0
    assert j.context_relevance("Why?", " ")[0] == 0.0


# ---------------------------------------------------------------- token budget

def test_long_context_is_cut_to_the_windows_most_like_the_claim():
    filler = [f"Paragraph {i} describes the weather in region {i} with rain and wind." for i in range(200)]
    needle = "The Norfield library opens at 9 am on weekdays."
    text = " ".join(filler[:120] + [needle] + filler[120:])
    j, engine = judge(window=600)
    j.groundedness([text], "The Norfield library opens at 9 am on weekdays.")
    prompt = engine.prompts[-1]
    assert engine.count_tokens(prompt) < 600  # fits the window
    assert needle in prompt  # the sentence holding the claim's words is its evidence
    assert prompt.count("Paragraph ") <= 3  # and only a few units besides it are read


def test_fit_context_keeps_order_and_budget():
    j, _ = judge()
    text = " ".join(f"Sentence {i} is about topic {i % 7}." for i in range(300))
    kept = j.fit_context(text, 200, query="topic 3")
    assert j.engine.count_tokens(kept) <= 200
    numbers_kept = [int(n) for n in re.findall(r"Sentence (\d+)", kept)]
    assert numbers_kept == sorted(numbers_kept)
    assert j.fit_context("short text", 200, query="x") == "short text"


def test_a_huge_single_sentence_still_fits():
    j, engine = judge(window=300)
    blob = " ".join(["word"] * 5000)  # no sentence breaks at all
    j.context_relevance("What word?", blob)
    assert engine.count_tokens(engine.prompts[-1]) < 300


def test_number_mismatches_catch_swaps_but_not_rewordings():
    from rag.evaluation.evidence import number_mismatches, number_tokens

    context = ("The pack charges from empty to full in 45 minutes and the drill delivers a maximum torque "
               "of 48 Nm. The library held some 4,000 manuscripts and burned in 1511.")
    assert number_mismatches("The pack charges fully in 48 minutes.", context) == ["48"]  # swapped
    assert number_mismatches("The pack charges fully in 45 minutes.", context) == []
    assert number_mismatches("The pack charges fully in 40 minutes.", context) == ["40"]  # absent
    # number words, thousands and reworded neighbours are not mismatches
    assert number_mismatches("A blaze in 1511 destroyed about four thousand manuscripts.", context) == []
    assert number_mismatches("It weighs 480 g.", "It weighs 0.48 kg.") == []  # a change of unit
    assert [v for _, v in number_tokens("thirty-one locks, 1,240 staff, twelve days")] == [31, 1240, 12]
