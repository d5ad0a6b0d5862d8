"""Key-fact correctness: a swapped, missing or contradicted fact scores at most 0.3 whatever the
word overlap; a paraphrase that states every fact scores high."""

import json

import pytest

from rag.errors import InputError
from rag.evaluation.key_facts import CAP, asked_kinds, key_fact_correctness, mentions, parse_key_fact
from rag.evaluation.metrics import answer_correctness, token_recall
from rag.evaluation.questions import as_questions, load_questions
from rag.evaluation.run import ROW_COLUMNS, stored_columns

SICK = "10 working days of paid sick leave per calendar year."
SICK_Q = "How many days of paid sick leave does a full-time employee get per calendar year?"
APPROVER = "The Department director, who approves claims from $500.01 to $5,000."
APPROVER_Q = "Who must approve an expense claim of $3,200?"


def correctness(answer, reference, **kw):
    return answer_correctness(answer, reference, **kw)


def test_a_swapped_number_is_wrong_whatever_the_word_overlap():
    out = correctness("25 working days of paid sick leave per calendar year", SICK, question=SICK_Q)
    assert out["token_recall"] == pytest.approx(7 / 8)  # what the old headline score said
    assert out["correctness"] <= CAP
    assert out["correctness_reason"].startswith('missing "10 working days"; answer says 25 working days')


def test_the_same_fact_in_other_words_scores_high():
    for answer in ("You get 10 working days of paid sick leave each year [1].",
                   "Full-time staff are entitled to ten days of sick leave.",
                   "Sick leave: 10 days a year."):
        out = correctness(answer, SICK, question=SICK_Q)
        assert out["correctness"] >= 0.8, (answer, out)
    assert correctness("Ten days.", SICK)["token_recall"] < 0.5  # word overlap alone would call it wrong


def test_a_missing_fact_caps_the_score():
    out = correctness("Employees get paid sick leave every calendar year [1].", SICK, question=SICK_Q)
    assert out["token_recall"] >= 0.6 and out["correctness"] <= CAP
    assert out["correctness_reason"].startswith('missing "10 working days"')


def test_another_role_for_the_same_slot_is_a_contradiction():
    wrong = correctness("It must be approved by the CFO.", APPROVER, question=APPROVER_Q)
    assert wrong["correctness"] <= CAP and "answer says CFO" in wrong["correctness_reason"]
    assert '"Department director"' in wrong["correctness_reason"]
    right = correctness("The Department director [2].", APPROVER, question=APPROVER_Q)
    assert right["correctness"] == 1.0
    # The head noun and its key modifier, in any order; a role without the modifier is not enough.
    assert correctness("The director of the department signs it.", APPROVER)["correctness"] == 1.0
    assert correctness("A director signs it.", APPROVER)["correctness"] <= CAP
    assert correctness("Your line manager approves it.", APPROVER)["correctness"] <= CAP


def test_role_acronyms_and_their_full_names_meet():
    reference = "The Chief Financial Officer approves it."
    assert correctness("The CFO does.", reference)["correctness"] == 1.0
    assert correctness("The chief financial officer does.", "The CFO.")["correctness"] == 1.0
    assert correctness("The CEO does.", reference)["correctness"] <= CAP


def test_the_detail_of_a_non_restrictive_clause_is_not_required_but_may_not_be_contradicted():
    assert correctness("A claim of $3,200 goes to the Department director.", APPROVER,
                       question=APPROVER_Q)["correctness"] == 1.0  # the question's $3,200 is no contradiction
    out = correctness("The Department director, for claims from $500 to $3,000.", APPROVER, question=APPROVER_Q)
    assert out["correctness"] <= CAP and 'detail "$500.01 to $5,000" contradicted' in out["correctness_reason"]


def test_money_values_and_ranges():
    (fact,) = mentions("from $500.01 to $5,000")
    assert (fact.kind, fact.values, fact.unit) == ("money", (500.01, 5000.0), "usd")
    assert mentions("$1.5 million")[0].values == (1_500_000.0,)
    reference = "Claims from $500.01 to $5,000."
    assert correctness("Between $500.01 and $5000.", reference)["correctness"] == 1.0
    assert correctness("$500.01-$5,000 [3]", reference)["correctness"] == 1.0
    wrong = correctness("Claims from $1,000 to $5,000.", reference)
    assert wrong["correctness"] <= CAP and "answer says $1,000 to $5,000" in wrong["correctness_reason"]
    assert correctness("Up to $5,000.", reference)["correctness"] <= CAP  # half a range is not the range
    assert correctness("$3,200", "$3,200.")["correctness"] == 1.0
    assert correctness("$3,300", "$3,200.")["correctness"] <= CAP


def test_codes_match_as_whole_tokens_case_insensitively():
    reference = "Every 6 months, using membrane kit AP-MK2."
    assert correctness("Use ap-mk2 every six months.", reference)["correctness"] == 1.0
    wrong = correctness("Use kit AP-MK3 every 6 months.", reference)
    assert wrong["correctness"] <= CAP and "answer says AP-MK3" in wrong["correctness_reason"]
    assert correctness("Alarm A090.", "Alarm A09.")["correctness"] <= CAP  # not the same token
    assert correctness("Alarm A09 [1].", "Alarm A09.")["correctness"] == 1.0
    assert correctness("Code X7.", "Code X6.")["correctness"] <= CAP
    kinds = {m.text: m.kind for m in mentions("A09, X6, AP-MK2, 30min, 4th, 90-calendar-day, 8-bit")}
    assert kinds == {"A09": "code", "X6": "code", "AP-MK2": "code", "30min": "number", "4th": "number",
                     "90-calendar-day": "number", "8-bit": "number"}


def test_a_person_matches_on_the_surname():
    reference = "The data steward, Dr. Tomasz Weller, within 24 hours of discovery."
    question = "Who must be told about a data loss, and how quickly?"
    assert correctness("Tell Dr. Weller, the data steward, within one day.", reference,
                       question=question)["correctness"] == 1.0
    wrong = correctness("Tell Dr. Jane Smith, the data steward, within 24 hours.", reference, question=question)
    assert wrong["correctness"] <= CAP and "answer says Dr. Jane Smith" in wrong["correctness_reason"]
    # Role and person in apposition name one individual: either will do, unless the other is contradicted.
    assert correctness("The data steward, within 24 hours.", reference, question=question)["correctness"] == 1.0
    assert correctness("Tomasz Weller, within 24 hours.", reference, question=question)["correctness"] == 1.0
    assert correctness("The lab director, within 24 hours.", reference, question=question)["correctness"] <= CAP
    # Explicit key facts that list both ask for both.
    both = ["data steward", "Dr. Tomasz Weller", "24 hours"]
    out = correctness("The data steward, within 24 hours.", reference, key_facts=both)
    assert out["correctness"] <= CAP and out["correctness_reason"].startswith('missing "Dr. Tomasz Weller"')


def test_yes_or_no_against_the_reference_opening():
    reference = "Yes, after the probation review, up to 2 days per week."
    question = "Can a new employee work remotely?"
    assert correctness("Yes, 2 days a week.", reference, question=question)["correctness"] == 1.0
    out = correctness("No, 2 days a week are not allowed.", reference, question=question)
    assert out["correctness"] <= CAP and out["correctness_reason"].startswith('answer says No where the reference')


def test_numbers_in_words_digits_and_units_compare_by_value():
    assert correctness("twenty-four hours", "Within 24 hours.")["correctness"] == 1.0
    assert correctness("within a day: 1 day", "Within 24 hours.")["correctness"] == 1.0  # 24 hours = 1 day
    assert correctness("1000 characters", "At least 1,000 characters.")["correctness"] == 1.0
    assert correctness("at least fourteen characters", "At least 14 characters.")["correctness"] == 1.0
    assert correctness("12 characters", "At least 14 characters.")["correctness"] <= CAP
    assert correctness("30 minutes", "More than 30 min.")["correctness"] == 1.0
    assert correctness("after 2 weeks", "At least 2 weeks before.")["correctness"] == 1.0
    assert correctness("14 days", "At least 2 weeks before.")["correctness"] == 1.0
    assert correctness("10 hours", SICK)["correctness"] <= CAP  # the value, but another unit
    assert correctness("address 1, 19200 baud", "Address 17, 19200 baud.")["correctness"] <= CAP
    assert correctness("slave address 17 at 19,200 baud", "Address 17, 19200 baud.")["correctness"] == 1.0
    assert correctness("First pH 7, then pH 4.", "First the pH 7.00 buffer, then the pH 4.00 buffer.")[
        "correctness"] == 1.0


def test_dates():
    assert correctness("by March 3, 2024", "By 3 March 2024.")["correctness"] == 1.0
    assert correctness("by 2024-03-03", "By 3 March 2024.")["correctness"] == 1.0
    assert correctness("by March 5, 2024", "By 3 March 2024.")["correctness"] <= CAP


def test_explicit_key_facts_replace_the_reference_facts():
    facts = ["dosing pump overrun", "locked out"]
    reference = "A09 is a dosing pump overrun; the controller stops the pump and locks it out."
    right = correctness("A dosing pump overrun: the pump is stopped and locks out.", reference, key_facts=facts)
    assert right["correctness"] == 1.0
    half = correctness("A dosing pump overrun.", reference, key_facts=facts)
    assert half["correctness"] <= CAP and half["correctness_reason"].startswith('missing "locked out"')
    # Parsed into the same kinds: "10 working days" is a number fact, so 25 days contradicts it.
    only = correctness("25 working days", "Sick leave.", key_facts=["10 working days"])
    assert only["correctness"] <= CAP and "answer says 25 working days" in only["correctness_reason"]
    assert [f.kind for f in parse_key_fact("Department director")] == ["role"]
    assert [f.kind for f in parse_key_fact("locked out")] == ["text"]
    # Key facts without a reference answer: correctness, no token scores.
    out = correctness("10 days", None, key_facts=["10 working days"])
    assert out["correctness"] == 1.0 and out["token_recall"] is None


def test_without_a_key_fact_the_score_falls_back_to_token_recall_and_says_so():
    reference = "The controller stops the pump and locks it out."
    answer = "It stops the pump."
    out = correctness(answer, reference)
    assert out["correctness"] == pytest.approx(token_recall(answer, reference)) == out["token_recall"]
    assert out["correctness_reason"].startswith("no key fact in the reference: token recall")
    assert correctness("anything", None) == {"correctness": None, "correctness_reason": None, "token_recall": None,
                                            "token_f1": None, "answer_cosine": None}


def test_facts_the_question_states_or_does_not_ask_for_are_not_required():
    reference = "A09 is a dosing pump overrun (the pump ran for more than 30 min); the pump is locked out."
    question = "What does alarm code A09 mean?"
    out = correctness("A dosing pump overrun; the pump is locked out.", reference, question=question)
    assert out["correctness_reason"].startswith("no key fact")  # A09 is the question's, 30 min a detail
    wrong = correctness("A dosing pump overrun of more than 60 minutes.", reference, question=question)
    assert wrong["correctness"] <= CAP and 'detail "30 min" contradicted' in wrong["correctness_reason"]
    # "How long" asks for a duration: the data steward beside it is not a key fact.
    reference = "At least 2 weeks before their last working day, with the data steward."
    assert correctness("2 weeks before.", reference, question="How long before they leave?")["correctness"] == 1.0
    assert correctness("2 weeks before.", reference)["correctness"] <= CAP  # without the question: all facts count
    assert asked_kinds("Who approves it, and how quickly?") == {"role", "person", "name", "number", "money", "date"}
    assert "code" in asked_kinds("Which kit is used?")


def test_key_fact_result_lists_each_check():
    result = key_fact_correctness("Dr. Weller within 48 hours", "Dr. Tomasz Weller, within 24 hours.")
    assert [(c.fact.kind, c.status) for c in result.checks] == [("person", "found"), ("number", "contradicted")]
    assert result.score == pytest.approx(min(0.5, CAP))


def test_question_sets_read_key_facts_and_name_the_line_of_a_bad_one(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in [
        {"question": "How many days?", "reference_answer": "10 days.", "key_facts": ["10 days", " 2 weeks "]},
        {"question": "Who?", "reference_answer": "The director.", "key_facts": "director"},
        {"question": "Where?", "reference_answer": "Here."}]) + "\n")
    questions = load_questions(path)
    assert [q.key_facts for q in questions] == [["10 days", "2 weeks"], ["director"], []]
    for bad in ([1, "x"], [""], {"fact": "x"}):
        path.write_text(json.dumps({"question": "Q?", "key_facts": "ok"}) + "\n"
                        + json.dumps({"question": "Q?", "key_facts": bad}) + "\n")
        with pytest.raises(InputError, match=r"q\.jsonl, line 2: .*key"):
            load_questions(path)
    assert as_questions([{"question": "Q?", "key_facts": ["10 days"]}])[0].key_facts == ["10 days"]


def test_the_sample_set_has_key_facts_its_references_state(root):
    questions = load_questions(root / "eval_questions" / "sample.jsonl")
    assert len(questions) == 12 and all(q.key_facts for q in questions)
    for q in questions:
        out = correctness(q.reference_answer, q.reference_answer, key_facts=q.key_facts, question=q.question)
        assert out["correctness"] == 1.0, (q.question, out["correctness_reason"])


def test_rows_and_stored_columns_keep_token_recall_beside_correctness():
    cut = ROW_COLUMNS.index("correctness")
    assert ROW_COLUMNS[cut:cut + 5] == ["correctness", "correctness_reason", "token_recall", "token_f1",
                                       "answer_cosine"]
    questions = as_questions([{"question": "Q?", "reference_answer": "10 days."}])
    assert {"correctness", "token_recall"} <= set(stored_columns(questions, (1,)))
    facts_only = as_questions([{"question": "Q?", "key_facts": ["10 days"]}])
    assert "correctness" in stored_columns(facts_only, (1,)) and "token_recall" not in stored_columns(facts_only, (1,))


def test_a_rival_named_first_is_the_answer_even_if_the_fact_follows():
    from rag.evaluation.metrics import answer_correctness

    reference = "The Department director, who approves claims from $500.01 to $5,000."
    question = "Who must approve an expense claim of $3,200?"
    rival_first = ("A claim of $3,200 must be approved by the Chief Financial Officer. The other options "
                   "(Line manager or Department director) do not apply.")
    fact_first = "The Department director approves it; above $5,000 the Chief Financial Officer does [1]."
    assert answer_correctness(rival_first, reference, question=question)["correctness"] <= 0.3
    assert answer_correctness(fact_first, reference, question=question)["correctness"] >= 0.9


LISTED_THEN_CONCLUDED = (
    "According to source [2], full-time employees receive the entitlements below for each calendar year:\n"
    "- Annual leave: 25 working days\n- Sick leave: 10 working days\n- Bereavement leave: 5 working days\n\n"
    "So, a full-time employee gets 25 working days of paid sick leave per calendar year.")


def test_an_answer_that_lists_the_right_row_but_concludes_another_value_is_wrong():
    out = correctness(LISTED_THEN_CONCLUDED, SICK, question=SICK_Q)
    assert out["correctness"] <= CAP
    assert "answer says 25 working days" in out["correctness_reason"]
    # Flattened into one line, the list items are still statements of their own.
    assert correctness(LISTED_THEN_CONCLUDED.replace("\n", " "), SICK, question=SICK_Q)["correctness"] <= CAP


def test_other_rows_and_less_specific_sentences_beside_the_fact_are_no_contradiction():
    listed = LISTED_THEN_CONCLUDED.rsplit("\n\n", 1)[0] + "\n\nSo you get 10 working days of paid sick leave."
    for answer in (listed,
                   "Sick leave: 10 working days [1]. Annual leave is 25 working days.",
                   "A full-time employee gets 10 working days of paid sick leave per calendar year. "
                   "A part-time employee gets 5 working days of paid sick leave per calendar year.",
                   "Full-time employees get 10 working days of paid sick leave, and 25 days of annual leave."):
        out = correctness(answer, SICK, question=SICK_Q)
        assert out["correctness"] == 1.0, (answer, out)


def test_a_sum_that_uses_the_right_value_but_concludes_another_is_wrong():
    summed = LISTED_THEN_CONCLUDED.rsplit("\n\n", 1)[0] + (
        "\n\nSo, a full-time employee gets 25 + 10 + 5 = 40 days of paid sick leave per calendar year.")
    out = correctness(summed, SICK, question=SICK_Q)
    assert out["correctness"] <= CAP and "answer says 40 days" in out["correctness_reason"], out


def test_recited_rows_before_a_conclusion_that_gives_the_fact_are_no_contradiction():
    recited = ("According to the sources, the approval thresholds are:\n"
               "- Claim amount: Up to $500 | Approver: Line manager.\n"
               "- Claim amount: $500.01 to $5,000 | Approver: Department director.\n"
               "- Claim amount: Above $5,000 | Approver: Chief Financial Officer.\n\n"
               "Since $3,200 falls within $500.01 to $5,000, the Department director must approve an expense "
               "claim of $3,200. [2]")
    assert correctness(recited, APPROVER, question=APPROVER_Q)["correctness"] == 1.0
    # Rows recited, then the wrong row concluded: still the rival's answer.
    wrong = recited.replace("the Department director must approve", "the Line manager must approve")
    assert correctness(wrong, APPROVER, question=APPROVER_Q)["correctness"] <= CAP
