"""Claim evidence and the explicit checks of groundedness: table rows, ranges, swapped numbers."""

import numpy as np
import pytest

from rag.evaluation.evidence import EvidenceFinder, row_cells, within
from rag.evaluation.judges.lexical import LocalJudge
from rag.text_units import split_units

pytestmark = pytest.mark.unit

LEAVE = """3.1 Leave entitlements
Full-time employees receive the entitlements below for each calendar year.
Leave type: Annual leave | Entitlement: 25 working days | Paid: Yes | Notes: Accrues monthly from the start date
Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes | Notes: A certificate is needed from the 4th day
Leave type: Unpaid leave | Entitlement: Up to 3 months | Paid: No | Notes: Requires approval from a director"""

APPROVALS = """4.4 Approval thresholds
Claim amount: Up to $500 | Approver: Line manager
Claim amount: $500.01 to $5,000 | Approver: Department director
Claim amount: Above $5,000 | Approver: Chief Financial Officer"""

PROSE = ("Submit expense claims within 30 days of the date on which the cost was incurred. "
         "Attach an itemised receipt for every expense of $25 or more.")


def flat_embed(texts):  # no semantics: the word and number signals decide
    return np.full((len(texts), 4), 0.5)


@pytest.fixture
def finder():
    return EvidenceFinder([LEAVE, APPROVALS, PROSE], flat_embed)


def test_units_are_table_rows_and_sentences():
    units = split_units(LEAVE + "\n\n" + PROSE)
    assert "Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes | Notes: A certificate is needed " \
           "from the 4th day" in units
    assert any(u.startswith("Submit expense claims within 30 days") for u in units)
    assert any(u.startswith("Attach an itemised receipt") for u in units)
    assert row_cells(units[1])[:2] == [("Leave type", "Annual leave"), ("Entitlement", "25 working days")]


@pytest.mark.parametrize("claim", [
    "Full-time employees get 10 working days of paid sick leave per year.",
    "You get ten days of sick leave.",
    "Annual leave is 25 working days.",
    "A claim of $3,200 must be approved by the Department director.",
    "A claim of $7,500 needs the CFO's approval.",
    "Claims must be submitted within 30 days.",
])
def test_claims_consistent_with_the_table_are_not_contradicted(finder, claim):
    evidence = finder.find(claim)
    assert evidence.contradicted == []
    assert evidence.units  # and some evidence is found


@pytest.mark.parametrize("claim, named", [
    # another row's number; the message names either side of the mix-up
    ("Full-time employees get 25 working days of paid sick leave per year.", ("Sick leave", "10 working days")),
    ("A claim of $3,200 must be approved by the CFO.", ("Department director", "$500.01 to $5,000")),
    ("A claim of $3,200 must be approved by the line manager.", ("Department director", "$500.01 to $5,000")),
    ("Claims must be submitted within 60 days.", ("30 days",)),  # a swapped number in prose
])
def test_claims_that_mix_rows_or_swap_numbers_are_contradicted(finder, claim, named):
    evidence = finder.find(claim)
    assert evidence.contradicted, claim
    assert any(name in c for c in evidence.contradicted for name in named), evidence.contradicted


def test_the_row_a_claim_speaks_of_is_its_first_evidence(finder):
    evidence = finder.find("Sick leave is 10 working days.")
    assert evidence.units[0].startswith("Leave type: Sick leave")
    assert len(evidence.units) <= 3


@pytest.mark.parametrize("value, cell, inside", [
    (3200, "$500.01 to $5,000", True), (7500, "$500.01 to $5,000", False), (7500, "Above $5,000", True),
    (400, "Up to $500", True), (600, "Up to $500", False), (5, "10 working days", False)])
def test_ranges_in_cells(value, cell, inside):
    assert within(value, cell) is inside


def test_context_relevance_sees_the_answer():
    judge = LocalJudge(flat_embed)
    question = "How many days of paid sick leave does an employee get?"
    without, _ = judge.context_relevance(question, LEAVE)
    with_answer, reason = judge.context_relevance(question, LEAVE, answer="Employees get 10 working days [1].")
    assert with_answer > without
    assert "answer" in reason
    unrelated, _ = judge.context_relevance(question, PROSE, answer="Employees get 10 working days [1].")
    assert unrelated < with_answer


def test_answer_relevance_drops_for_an_answer_without_what_was_asked():
    judge = LocalJudge(flat_embed)
    question = "How many days of paid sick leave does an employee get?"
    dodge, reason = judge.answer_relevance(question, "Sick leave is described in the leave policy of the handbook.")
    answer, _ = judge.answer_relevance(question, "An employee gets 10 working days of paid sick leave.")
    assert dodge < 0.5 <= answer
    assert "a number" in reason


@pytest.mark.parametrize("claim, question, contradicted", [
    ("The answer is 25 working days.", "How many days of sick leave does an employee get?", True),
    ("The answer is 10 working days.", "How many days of sick leave does an employee get?", False),
    ("It must be approved by the Chief Financial Officer.", "Who approves an expense claim of $3,200?", True),
    ("It must be approved by the Department director.", "Who approves an expense claim of $3,200?", False),
    ("Annual leave is 25 working days.", "How many days of sick leave does an employee get?", False),  # another row, named
    ("The answer is 25 working days.", "How do annual leave and sick leave differ?", False),  # two rows asked
])
def test_a_claim_that_names_no_row_answers_the_row_asked_about(finder, claim, question, contradicted):
    evidence = finder.find(claim, question=question)
    assert bool(evidence.contradicted) is contradicted, evidence.contradicted


MAINTENANCE = """6.1 Maintenance schedule
Interval: Every 6 months | Task: Replace the chlorine probe membrane cap and electrolyte | Parts: Membrane kit AP-MK2.
Interval: Every 12 months | Task: Replace the pH probe | Parts: pH probe AP-PH1.
Interval: Daily | Task: Check the display for alarms | Parts: None."""


@pytest.mark.parametrize("claim, contradicted", [
    ("The chlorine probe membrane cap must be replaced every 12 months.", True),  # a longer cell, stemmed
    ("The chlorine probe membrane cap must be replaced every 6 months with kit AP-MK2.", False),
    ("Step 1: put the probe in the pH 7.00 buffer.", False),  # "1" and "pH" do not state "AP-PH1"
    ("The alarm is raised after 30 s.", False),
])
def test_cells_are_compared_as_values(claim, contradicted):
    evidence = EvidenceFinder([MAINTENANCE], flat_embed).find(claim)
    assert bool(evidence.contradicted) is contradicted, evidence.contradicted


def test_a_code_is_no_amount_for_a_range_cell():
    from rag.evaluation.evidence import amounts

    assert amounts("Alarm code A09 on the AquaPure 3000 means 9 more days, not X6 or AP-MK2.") == [9.0]


def test_a_table_row_is_shown_with_the_prose_that_introduces_its_table():
    finder = EvidenceFinder([LEAVE, PROSE], flat_embed)
    evidence = finder.find("Full-time employees get 10 working days of sick leave per calendar year.")
    assert evidence.units[0].startswith("Leave type: Sick leave")
    assert evidence.lead_ins == ["3.1 Leave entitlements Full-time employees receive the entitlements below for "
                                 "each calendar year."]
    assert evidence.text.startswith("3.1 Leave entitlements") and "Leave type: Sick leave" in evidence.text
    # Evidence without a table row has no lead-in: the judge sees the sentences alone.
    prose = EvidenceFinder([LEAVE, PROSE], flat_embed, k=1).find("Expense claims are submitted within 30 days.")
    assert prose.units == [PROSE.split(". ")[0] + "."] and not prose.lead_ins


def test_evidence_prefers_the_unit_with_the_claims_own_numbers_over_the_products_number():
    """"AquaPure 3000" is in the question and in every sentence about the product: the sentence with
    the claim's other numbers (17, 19200) is its evidence, not one that merely names the product."""
    manual = ("The AquaPure 3000 acts as a Modbus RTU slave and its factory default address can be changed. "
              "The AquaPure 3000 factory default Modbus RTU settings follow. "
              "The factory settings are: address 17, 19200 baud.")
    claim = "The factory default Modbus RTU address of the AquaPure 3000 is 17 and the baud rate is 19200."
    question = "What are the factory default Modbus RTU address and baud rate of the AquaPure 3000?"
    found = EvidenceFinder([manual], flat_embed, k=2).find(claim, question)
    assert "The factory settings are: address 17, 19200 baud." in found.units, found.units


def test_a_name_after_a_colon_does_not_take_the_article_with_it():
    from rag.evaluation.evidence import names

    assert names("Therefore, the answer is: The Department director approves.") == ["Department"]
    assert names("It was signed by Margaret Oldroyd in Harwell.") == ["Margaret Oldroyd", "Harwell"]


def test_a_number_inside_a_range_states_it_only_when_it_counts_the_same_thing():
    from rag.evaluation.evidence import normalise, states

    def says(cell, claim, numbers):
        return states(cell, normalise(claim).split(), numbers, [])

    assert not says("0 to 600 s", "The Modbus address is 17.", [17.0])  # an address is no delay
    assert says("0 to 600 s", "The delay can be set to 300 seconds.", [300.0])
    assert says("6.50 to 8.50", "The pH setpoint can be set to 7.0.", [7.0])  # a unit-free range takes any value


def test_the_unit_holding_the_claims_own_numbers_is_always_shown():
    settings = ("4.5 Modbus address and baud rate. The controller acts as a Modbus RTU slave at a baud rate you set. "
                "The Modbus address and rate show on the display. The Modbus port sits under the cover. "
                "The factory settings are: address 17, 19200 baud.")

    def embed(texts):  # the number-bearing sentence looks least like the claim
        return np.array([[0.0, 1.0] if "factory settings" in t else [1.0, 0.0] for t in texts])

    found = EvidenceFinder([settings], embed).find("The Modbus address is 17 and the baud rate is 19200.")
    assert len(found.units) == 3
    assert "The factory settings are: address 17, 19200 baud." in found.units


def test_a_value_given_by_a_unit_as_close_to_the_claim_is_no_contradiction():
    steps = ("2. Rinse the probe with distilled water and place it in the pH 7.00 buffer. "
             "3. Rinse the probe again and place it in the pH 4.00 buffer.")
    found = EvidenceFinder([steps], flat_embed).find("Rinse the probe again and place it in the pH 4.00 buffer.")
    assert found.contradicted == []
    leave = "Annual leave is 25 days a year. Sick leave is 10 days a year."
    found = EvidenceFinder([leave], flat_embed).find("Sick leave is 25 days a year.")
    assert found.contradicted and "25 days" in found.contradicted[0]
