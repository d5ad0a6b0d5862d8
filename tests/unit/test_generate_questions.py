"""The checks that decide which generated questions are kept, on hand-made replies."""

import pytest

from rag.evaluation.generate_questions import Passage, _pack, check, parse_reply

A = Passage("handbook.pdf", 2, "Full-time employees receive 10 working days of paid sick leave per calendar year. "
                               "A medical certificate is needed from the 4th consecutive day of absence.")
B = Passage("handbook.pdf", 3, "Expense claims from $500.01 to $5,000 are approved by the department director. "
                               "Passwords must be at least 14 characters long.")


@pytest.mark.parametrize("reply, expected", [
    ("Question: How many sick days do full-time staff get?\nAnswer: 10 working days",
     ("How many sick days do full-time staff get?", "10 working days")),
    ("**Question:** When is a medical certificate needed?\n**Answer:** From the 4th day.\nExtra line",
     ("When is a medical certificate needed?", "From the 4th day.")),
    ("Question: <question>\nAnswer: <answer>", None),  # the template echoed back
    ("Question: Sick leave\nAnswer: 10 days", None),  # not a question
    ("I cannot do that.", None),
])
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected


def test_kept_question():
    assert check("single", "How many sick days do full-time staff get per year?", "10 working days", [A]) is None


@pytest.mark.parametrize("kind, question, answer, evidence, reason", [
    ("single", "How long is the parental leave at the company?", "16 weeks of paid parental leave", [A],
     "not answerable from its evidence"),
    ("single", "Do employees get 10 working days of paid sick leave?", "10 working days of paid sick leave", [A],
     "leaks the answer"),
    ("numeric", "Who must give a certificate after some days of absence?", "employees medical certificate", [A],
     "no number in the answer"),
    ("multi", "How many sick days do full-time staff get?", "10 working days", [A, B], "does not use both passages"),
    ("multi", "How many sick days do staff get, and who approves claims?", "10 working days", [A, B],
     "does not use both passages"),  # one word of B is not enough
    ("single", "What must the README contain?", "the eight fields listed in the passage", [A],
     "not answerable from its evidence"),
    ("single", "What does this passage say about sick leave days?", "10 working days", [A], "refers to the passage"),
])
def test_dropped_questions_name_the_reason(kind, question, answer, evidence, reason):
    assert check(kind, question, answer, evidence) == reason


def test_multi_question_using_both_passages_is_kept():
    assert check("multi", "How many sick days are there, and who approves a $3,200 expense claim?",
                 "10 working days; the department director", [A, B]) is None


def test_passages_are_whole_paragraphs_within_bounds():
    page = "\n\n".join(" ".join(f"w{p}_{i}" for i in range(70)) for p in range(4)) + "\n\nshort tail"
    packed = _pack(page)
    assert [len(p.split()) for p in packed] == [140, 142]  # two paragraphs each; the short tail joins the last
