"""Context pruning's own logic: which units are kept under a budget, what each kept unit brings
along, and how the kept text reads. Scores are given directly (no embedding model)."""

import numpy as np
import pytest

from rag.retrieval.prune import GAP, Unit, approx_tokens, boilerplate, choose, join, needed_before
from rag.text_units import split_paragraphs, split_units

pytestmark = pytest.mark.unit

TABLE = """6.1 Maintenance schedule
Interval: Every 3 months | Task: Two-point pH calibration | Kit: AP-BUF47.
Interval: Every 6 months | Task: Replace the membrane cap | Kit: AP-MK2.
Interval: Every 12 months | Task: Replace the pH probe | Kit: AP-PH1.
6.2 Storage
Never let the probe dry out. This keeps the glass wet. Store it in KCl."""


def units_of(*texts):
    return [Unit(i, p, k, t) for i, text in enumerate(texts)
            for p, paragraph in enumerate(split_paragraphs(text)) for k, t in enumerate(paragraph)]


def test_list_numbers_start_their_item_and_page_counters_stay_put():
    assert split_units("Steps:\n3. Open the menu. Then wait.\nPage 3 of 5. Done.") == [
        "Steps:", "3. Open the menu.", "Then wait.", "Page 3 of 5.", "Done."]


def test_rows_are_units_of_their_own_and_prose_splits_into_sentences():
    paragraphs = split_paragraphs(TABLE)
    assert paragraphs[0] == ["6.1 Maintenance schedule"]
    assert [len(p) for p in paragraphs] == [1, 1, 1, 1, 3]
    assert paragraphs[-1][0] == "6.2 Storage Never let the probe dry out."


def test_a_row_brings_its_heading_and_a_referring_sentence_its_antecedent():
    units = units_of(TABLE)
    membrane = next(i for i, u in enumerate(units) if "membrane" in u.text)
    assert needed_before(units, membrane).text == "6.1 Maintenance schedule"
    this = next(i for i, u in enumerate(units) if u.text.startswith("This keeps"))
    assert needed_before(units, this).text.endswith("Never let the probe dry out.")
    store = next(i for i, u in enumerate(units) if u.text.startswith("Store it"))
    assert needed_before(units, store) is None


def test_the_best_units_are_kept_while_the_budget_lasts():
    units = units_of(TABLE, "Unrelated text about the warranty, which lasts 36 months from shipment.")
    scores = np.array([0.9 if "membrane" in u.text else 0.5 if "warranty" in u.text else 0.1 for u in units])
    budget = sum(approx_tokens(u.text) for u in units if "membrane" in u.text or "schedule" in u.text)
    kept = {units[i].text for i in range(len(units)) if id(units[i]) in choose(units, scores, budget)}
    assert kept == {"6.1 Maintenance schedule", next(u.text for u in units if "membrane" in u.text)}
    everything = choose(units, scores, 10_000)
    assert len(everything) == len(units)


def test_the_best_unit_is_kept_even_over_budget():
    units = units_of(TABLE)
    scores = np.linspace(1, 0, len(units))
    assert id(units[0]) in choose(units, scores, 1)


def test_kept_units_read_in_document_order_with_gaps_marked():
    units = units_of(TABLE)
    keep = [u for u in units if "schedule" in u.text or "membrane" in u.text or u.text.startswith("Store")]
    assert join(keep, units).split("\n") == [
        "6.1 Maintenance schedule", GAP, units[2].text, GAP, "Store it in KCl."]
    assert join(units, units) == "\n".join(
        [u.text for u in units[:4]] + [" ".join(u.text for u in units[4:])])


def test_a_pruned_context_splits_at_its_gaps_into_the_sentences_kept():
    """A sentence never runs across a gap mark: the text either side of it was not adjacent."""
    pruned = "\n".join(["…", "Core hours are 10:00 to 15:00. On Fridays there are no core hours.", GAP,
                         "6.2 Remote work Employees may work remotely up to 2 days per week.", GAP])
    assert split_units(pruned) == ["Core hours are 10:00 to 15:00.", "On Fridays there are no core hours.",
                                   "6.2 Remote work Employees may work remotely up to 2 days per week."]
    assert len(split_paragraphs(pruned)) == 2


def test_running_footers_are_boilerplate():
    units = units_of("Guide to the AquaPure 3000, page 3 of 5\n\nThe cap lasts 6 months.",
                     "Guide to the AquaPure 3000 Rev 3\n\nA fact.\n\nGuide to the AquaPure 3000 Rev 4")
    flagged = {units[i].text for i in boilerplate(units)}
    assert flagged == {"Guide to the AquaPure 3000, page 3 of 5", "Guide to the AquaPure 3000 Rev 3",
                       "Guide to the AquaPure 3000 Rev 4"}


def test_footers_are_never_kept_nor_taken_for_a_heading():
    text = ("Leave table\nType: Annual | Days: 25.\n\nHandbook, page 2 of 5\n\nType: Sick | Days: 10.")
    units = units_of(text, "Handbook, page 3 of 5\n\nOther text.")
    for i in boilerplate(units):
        units[i].boilerplate = True
    sick = next(i for i, u in enumerate(units) if "Sick" in u.text)
    assert needed_before(units, sick).text == "Leave table"
    kept = choose(units, np.ones(len(units)), 10_000)
    assert {u.text for u in units if id(u) in kept} == {u.text for u in units if "page" not in u.text}
