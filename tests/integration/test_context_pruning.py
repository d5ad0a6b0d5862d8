"""Context pruning on the real sample PDFs with the bundled embedding model and generator."""

import pytest

from rag.retrieval.prune import GAP, approx_tokens

MEMBRANE = "How often must the chlorine probe membrane cap of the AquaPure 3000 be replaced, and which kit is used?"


@pytest.mark.parametrize("kind", ["basic", "sentence_window", "auto_merging"])
def test_pruned_contexts_keep_the_answer_row_within_the_budget(sample_app, kind):
    whole = sample_app.retrieve(MEMBRANE, f"{kind}:context_budget=0")
    pruned = sample_app.retrieve(MEMBRANE, f"{kind}:context_budget=150")
    assert sum(approx_tokens(s.text) for s in whole) > 150  # there was something to prune
    assert sum(approx_tokens(s.text) for s in pruned) <= 150
    assert any("Every 6 months" in s.text and "membrane cap" in s.text for s in pruned)
    # Every kept line comes from a passage cited with the same file and pages (two passages may share them).
    by_place: dict[tuple, list[str]] = {}
    for s in whole:
        by_place.setdefault((s.file, s.page, s.page_end), []).append(" ".join(s.text.split()))
    for source in pruned:
        originals = by_place[(source.file, source.page, source.page_end)]
        for line in source.text.split("\n"):
            assert line == GAP or any(line in original for original in originals), line


def test_a_budget_the_contexts_fit_changes_nothing(sample_app):
    whole = sample_app.retrieve(MEMBRANE, "sentence_window:context_budget=0")
    assert sample_app.retrieve(MEMBRANE, "sentence_window:context_budget=100000") == whole


def test_the_budget_is_a_retriever_parameter_named_in_the_version(sample_app):
    assert "context_budget=300" in sample_app.spec("basic:context_budget=300").name
    assert "context_budget=500" in sample_app.spec("basic").name  # the default
    assert "context_budget" not in sample_app.spec("basic:context_budget=0").name  # off: names as before


def test_a_pruned_prompt_is_shorter_and_still_answers(sample_app):
    whole = sample_app.query(MEMBRANE, retriever="auto_merging:context_budget=0")
    pruned = sample_app.query(MEMBRANE, retriever="auto_merging:context_budget=200")
    assert pruned.usage["prompt_tokens"] < whole.usage["prompt_tokens"] / 3
    assert pruned.answer.strip() and pruned.sources


def test_pruned_sources_do_not_depend_on_the_questions_asked_before(sample_app):
    """The int8 embedder's vectors move with their batch mates; pruning must not let the cache's history
    (which units were embedded with which) change what a question's prompt holds."""
    from rag.retrieval import prune

    others = ["How many days of paid sick leave does a full-time Northwind Robotics employee get per calendar year?",
              "At Northwind Robotics, who must approve an expense claim of $3,200?",
              "What is the minimum password length for Northwind Robotics company accounts?"]
    question = ("When can a new Northwind Robotics employee first work remotely, and how many remote days per "
                "week are then allowed?")
    prune._vectors.clear()
    alone = sample_app.retrieve(question, "basic")
    prune._vectors.clear()
    for other in others:
        sample_app.retrieve(other, "basic")
    assert sample_app.retrieve(question, "basic") == alone
