"""Citation faithfulness: the source a sentence cites must hold it, not merely some source."""

import pytest
from fakes import hash_embed

from rag.evaluation.citations import citation_faithfulness, cited_sentences
from rag.evaluation.judges.lexical import LocalJudge

QUESTION = "How many days of paid sick leave does a full-time employee get?"
LEAVE = ("Full-time employees receive the entitlements below for each calendar year.\n"
         "Leave type: Annual leave | Entitlement: 25 working days | Paid: Yes.\n"
         "Leave type: Sick leave | Entitlement: 10 working days | Paid: Yes.")
PASSWORDS = "Passwords must be at least 14 characters long and are changed every 90 days."
CONTEXTS = [LEAVE, PASSWORDS]


@pytest.fixture(scope="module")
def judge():
    return LocalJudge(hash_embed)


def score(answer, judge):
    return citation_faithfulness(answer, CONTEXTS, judge, QUESTION)


def test_a_sentence_supported_by_the_source_it_cites(judge):
    for answer in ("According to source [1], full-time employees receive 10 working days of paid sick leave.",
                   "Full-time employees get 10 working days of paid sick leave [1].",
                   "Full-time employees get 10 working days of paid sick leave. This is stated in source [1]."):
        value, reason = score(answer, judge)
        assert value == 1.0, (answer, reason)
        assert reason.startswith("1 of 1 citing sentences supported")


def test_the_right_fact_cited_to_the_wrong_source(judge):
    value, reason = score("Full-time employees get 10 working days of paid sick leave [2].", judge)
    assert value == 0.0
    assert "[2] does not support" in reason and "source [1] does" in reason


def test_a_swapped_row_value_is_not_supported_by_its_source(judge):
    value, reason = score("Full-time employees get 25 working days of paid sick leave [1].", judge)
    assert value == 0.0 and "no source does" in reason


def test_a_citation_to_a_source_that_was_not_given(judge):
    value, reason = score("Full-time employees get 10 working days of paid sick leave [3].", judge)
    assert value == 0.0 and "[3] cites no source (the answer had 2)" in reason


def test_each_citing_sentence_counts_once(judge):
    answer = ("Full-time employees get 10 working days of paid sick leave [1]. "
              "Passwords must be at least 14 characters long [2]. Passwords never expire [2].")
    value, reason = score(answer, judge)
    assert value == pytest.approx(2 / 3), reason
    assert '[2] does not support "Passwords never expire' in reason


def test_no_citation_no_score(judge):
    assert score("Ten working days.", judge) == (None, "The answer cites no source.")
    assert score("I could not find it in the documents [1].", judge)[0] is None  # an abstention claims nothing


def test_which_sentences_cite_what():
    found = cited_sentences("Ten days of sick leave [1, 2]. Passwords need 14 characters [1-3]. [4] Unrelated.")
    assert [(s.text, s.cited) for s in found] == [("Ten days of sick leave.", [1, 2]),
                                                 ("Passwords need 14 characters.", [1, 2, 3, 4])]


def test_attribution_and_quotes_are_not_part_of_the_claim(judge):
    value, reason = score("According to [1], full-time employees get 10 working days of paid sick leave.", judge)
    assert value == 1.0, reason
    quoted = ('This can be found in the security section of the handbook, which states: '
              '"Passwords must be at least 14 characters long." [2]')
    assert [s.text for s in cited_sentences(quoted)] == ["Passwords must be at least 14 characters long."]
    assert score(quoted, judge)[0] == 1.0
