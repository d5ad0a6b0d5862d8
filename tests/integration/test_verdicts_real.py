"""The verdict's parts on the real sample handbook and the real 1.5B judge: a table row read as a row,
a swapped number caught claim by claim, correctness that checks the fact, a context that holds the
answering row counted as relevant.

Skipped unless the model is in the cache (``rag models pull qwen2.5-coder-1.5b``). About 30 s on one core.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HANDBOOK = Path(__file__).resolve().parents[2] / "data" / "northwind_employee_handbook.pdf"
QUESTION = "How many days of paid sick leave does a full-time Northwind Robotics employee get per calendar year?"
RIGHT = "Full-time employees get 10 working days of paid sick leave per calendar year [1]."
SWAPPED = "Full-time employees get 25 working days of paid sick leave per calendar year [1]."


@pytest.fixture(scope="module")
def leave_context() -> str:
    """The handbook's leave section as ingest reads it (page text around the leave table)."""
    from rag.ingest.pdf import read_pdf

    text = read_pdf(HANDBOOK, HANDBOOK.name).text
    start = text.index("3.1 Leave entitlements")
    return text[start:start + 1500]


@pytest.fixture(scope="module")
def judge():
    from rag.config import Config
    from rag.evaluation.judges.probability import DEFAULT_MODEL, ProbabilityJudge
    from rag.generation.catalogue import is_ready

    config = Config()
    if not is_ready(DEFAULT_MODEL, config.model_cache_dir):
        pytest.skip(f"{DEFAULT_MODEL} GGUF is not in {config.model_cache_dir}/gguf: run `rag models pull {DEFAULT_MODEL}`")
    return ProbabilityJudge.from_config(config.replace(llm_threads=1), fetch=False)


def test_the_sick_leave_row_keeps_its_headers(leave_context):
    row = next(line for line in leave_context.splitlines() if "Sick leave" in line)
    assert "Leave type: Sick leave" in row and "Entitlement: 10 working days" in row and "Paid: Yes" in row


def test_groundedness_catches_the_neighbouring_row_number(judge, leave_context):
    right, right_reason = judge.groundedness([leave_context], RIGHT)
    swapped, swapped_reason = judge.groundedness([leave_context], SWAPPED)
    assert swapped <= 0.1 < right, (right_reason, swapped_reason)
    assert "contradicted" in swapped_reason and "10 working days" in swapped_reason
    assert "Sick leave" in right_reason  # the evidence shown is the sick-leave row


def test_correctness_checks_the_fact_not_the_words():
    from rag.evaluation.metrics import answer_correctness

    reference = "10 working days of paid sick leave per calendar year."
    swapped = answer_correctness(SWAPPED, reference, question=QUESTION)
    right = answer_correctness("You get ten working days each year [1].", reference, question=QUESTION)
    assert swapped["token_recall"] > 0.8 and swapped["correctness"] <= 0.3
    assert "10 working days" in swapped["correctness_reason"]
    assert right["correctness"] >= 0.9


def test_a_context_holding_the_answering_row_is_relevant(judge, leave_context):
    from rag.evaluation.judges.lexical import LocalJudge

    lexical = LocalJudge(judge.embed)
    with_answer, reason = lexical.context_relevance(QUESTION, leave_context, answer=RIGHT)
    unrelated, _ = lexical.context_relevance(
        QUESTION, "Submit expense claims in ExpenseTrack within 30 days of the date of the cost.", answer=RIGHT)
    assert with_answer >= 0.5 > unrelated, reason
