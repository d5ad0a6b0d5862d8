"""Why a wrong answer is wrong: retrieval miss, generation miss or abstention, from the row alone."""

import pytest

from rag.evaluation.diagnosis import diagnose, facts_held, miss_counts, miss_text

pytestmark = pytest.mark.unit

Q = "How many days of paid sick leave does a full-time employee get per calendar year?"
REF = "10 working days of paid sick leave per calendar year."
TABLE = ("Leave type: Annual leave | Entitlement: 25 working days.\n"
         "Leave type: Sick leave | Entitlement: 10 working days.")
APPROVALS = ("Claim amount: Up to $500 | Approver: Line manager.\n"
             "Claim amount: $500.01 to $5,000 | Approver: Department director.")


def test_evidence_in_the_contexts_and_a_wrong_answer_is_a_generation_miss():
    assert diagnose("You get 25 working days.", [TABLE], REF, 0.0, question=Q) == "generation_miss"


def test_evidence_missing_from_the_contexts_is_a_retrieval_miss():
    assert diagnose("You get 25 working days.", ["Annual leave: 25 working days."], REF, 0.0,
                    question=Q) == "retrieval_miss"


def test_other_rows_around_the_fact_do_not_hide_it():
    # The line manager comes first in the table: in an answer that would be a contradiction, here it is context.
    assert facts_held([APPROVALS], "The Department director.", question="Who must approve a $3,200 claim?")
    assert facts_held([APPROVALS], "The Department director.", key_facts=["Department director"])
    assert not facts_held(["Claim amount: Up to $500 | Approver: Line manager."], "The Department director.")


def test_right_abstained_failed_and_unscored_rows():
    assert diagnose("10 working days [1].", [TABLE], REF, 1.0, question=Q) == "right"
    assert diagnose("I could not find it in the documents.", [TABLE], REF, 0.0, question=Q) == "abstained"
    assert diagnose("", [], REF, None, error="RuntimeError: boom") == "failed"
    assert diagnose("Ten days.", [TABLE], None, None) is None  # no reference: nothing to diagnose


def test_without_key_facts_the_evidence_pages_decide():
    reference = "Because it keeps the process simple and cheap."
    assert diagnose("Because of costs.", ["some context"], reference, 0.1, evidence_hit=1.0) == "generation_miss"
    assert diagnose("Because of costs.", ["some context"], reference, 0.1, evidence_hit=0.0) == "retrieval_miss"
    assert diagnose("Because of costs.", ["some context"], reference, 0.1) == "unknown"


def test_counts_and_text():
    counts = miss_counts(["right", "retrieval_miss", "generation_miss", "generation_miss", None])
    assert counts == {"retrieval_miss": 1, "generation_miss": 2, "abstained": 0}
    assert miss_text(counts) == "1 retrieval miss, 2 generation misses"
    assert miss_text(miss_counts(["right"])) == ""
