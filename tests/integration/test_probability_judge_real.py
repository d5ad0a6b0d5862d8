"""The probability judge with the real Qwen2.5-Coder-1.5B GGUF: hallucinations the lexical judge passes.

Skipped unless the model is in the cache (``rag models pull qwen2.5-coder-1.5b``). About 30 s on one core.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

CONTEXT = (
    "The Norfield public library opens at 9 am on weekdays and at 10 am on Saturdays. It is closed on "
    "Sundays. The library was founded in 1921 by the mayor, Helen Carter, and moved to its current building "
    "on Mill Street in 1978. Its reading room seats 120 people."
)

GROUNDED = [
    "The library opens at 9 am on weekdays and at 10 am on Saturdays.",
    "Helen Carter, who was mayor at the time, founded the library in 1921.",
    "The library is closed on Sundays and its reading room seats 120 people.",
]
# A reworded negation ("closed" -> "does not open"): ranked above every hallucination, but the 1.5B
# gives it P(yes) ~0.77, which the calibration puts at the boundary (0.49 when written).
PARAPHRASED_NEGATION = "The library does not open on Sundays."
UNGROUNDED = [
    "The reading room of the library seats 210 people.",  # a number changed
    "The library is open on Sundays.",  # a negation flipped
    "The library was founded in 1921 by the architect of Mill Street, Helen Carter.",  # a role invented/swapped
]


@pytest.fixture(scope="module")
def judge():
    from rag.config import Config
    from rag.evaluation.judges.probability import DEFAULT_MODEL, ProbabilityJudge

    try:
        from rag.generation.catalogue import is_ready
    except ImportError:
        pytest.skip("rag.generation.catalogue is not available")
    config = Config()
    if not is_ready(DEFAULT_MODEL, config.model_cache_dir):
        pytest.skip(f"{DEFAULT_MODEL} GGUF is not in {config.model_cache_dir}/gguf: run `rag models pull {DEFAULT_MODEL}`")
    return ProbabilityJudge.from_config(config.replace(llm_threads=1), fetch=False)


def test_grounded_and_ungrounded_claims_are_separated_at_threshold(judge):
    grounded = [judge.groundedness([CONTEXT], answer) for answer in GROUNDED]
    ungrounded = [judge.groundedness([CONTEXT], answer) for answer in UNGROUNDED]
    report = "\n".join(f"{score:.2f} {reason}" for score, reason in grounded + ungrounded)
    assert all(score >= judge.threshold for score, _ in grounded), report
    assert all(score < judge.threshold for score, _ in ungrounded), report
    assert "210" in ungrounded[0][1]  # the reason names the number the context lacks


def test_a_reworded_negation_still_ranks_above_the_hallucinations(judge):
    paraphrase, _ = judge.groundedness([CONTEXT], PARAPHRASED_NEGATION)
    worst_hallucination = max(judge.groundedness([CONTEXT], answer)[0] for answer in UNGROUNDED)
    # The margin narrowed from 0.2 when the judge began to mark a negation its evidence lacks
    # ("does not open" against "closed"): the price of catching more flipped negations.
    assert paraphrase > worst_hallucination + 0.1


def test_the_lexical_judge_passes_what_this_judge_catches(judge):
    # The reason for this judge: two of the three hallucinations reuse the context's own words.
    lexical = [judge.lexical.groundedness([CONTEXT], answer)[0] for answer in UNGROUNDED[1:]]
    assert any(score >= 0.5 for score in lexical)


def test_relevance_with_the_real_model(judge):
    question = "When does the Norfield library open on Saturdays?"
    relevant, _ = judge.context_relevance(question, CONTEXT)
    other, _ = judge.context_relevance(question, "The Norfield swimming pool opens at 7 am every day of the week.")
    assert relevant >= 0.5 > other
    answered, _ = judge.answer_relevance(question, "It opens at 10 am on Saturdays.")
    off_topic, _ = judge.answer_relevance(question, "Helen Carter was the mayor of Norfield.")
    assert answered >= 0.5 > off_topic


LEAVE_TABLE = (
    "3.1 Leave entitlements\n"
    "Full-time employees receive the following entitlements each calendar year.\n"
    "Leave type: Annual leave | Entitlement: 25 working days | Paid: Yes | Notes: Accrues monthly.\n"
    "Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes | Notes: A medical certificate is needed "
    "from the 4th day.\n"
    "Leave type: Parental leave | Entitlement: 16 weeks | Paid: Yes | Notes: Can start 2 weeks early."
)
LEAVE_QUESTION = "How many days of paid sick leave does a full-time Kestrel Systems employee get per year?"


def test_a_right_answer_restating_the_question_is_grounded_and_the_neighbouring_row_is_not(judge):
    """The answer repeats what was asked (the company, "full-time", "per year"), which its evidence
    row does not say: read with the question it is grounded; the annual leave's 25 days is not."""
    right, why_right = judge.groundedness(
        [LEAVE_TABLE], "A full-time Kestrel Systems employee gets 10 working days of paid sick leave per year.",
        question=LEAVE_QUESTION)
    wrong, why_wrong = judge.groundedness(
        [LEAVE_TABLE], "A full-time Kestrel Systems employee gets 25 working days of paid sick leave per year.",
        question=LEAVE_QUESTION)
    assert right >= judge.threshold > wrong, f"{right:.2f} {why_right}\n{wrong:.2f} {why_wrong}"
    assert "contradicted" in why_wrong
