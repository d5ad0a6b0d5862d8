"""Section headings found in a PDF's text: what each chunk's embedding is told it sits under."""

import pytest

from rag.ingest.sections import Sections, heading_level

pytestmark = pytest.mark.unit

POLICY = """Research Data Management Policy of the Coastal
Sediment Dynamics Lab
Department of Earth Sciences | Version 2.0
1. Purpose and Scope
The lab collects field data.
7. Sharing and Publication
7.1 Deposit in the repository
Data are deposited in the repository. Deposit must happen within 12 months of the end of data
collection.
3. Transfers ownership of their Git repositories to the lab organisation on
the Git server.
7.2 Licences
Data sets are released under CC BY 4.0.
8. Incidents
"""


@pytest.mark.parametrize("line, level", [
    ("7. Sharing and Publication", 1), ("7.1 Deposit in the repository", 2), ("4.2.1 File names", 3),
    ("Item 1A. Risk Factors", 1), ("PART I. FINANCIAL INFORMATION", 1), ("A. Scope", 1),
    ("Item 2. Management's Discussion and Analysis of Financial Condition and Results of Operations", 1),
    # not headings: steps and sentences, wrapped list items, numbers that start prose, table rows
    ("1. Open MENU, then Calibration, then pH two-point.", None),
    ("3. Transfers ownership of their Git repositories to the lab organisation on", None),
    ("2022 Revenue grew by 4 percent", None), ("12 months of data", None), ("I think this works", None),
    ("Leave type: Sick leave | Entitlement: 10 working days", None), ("7.1 deposit in the repository", None),
])
def test_numbered_headings_are_told_from_steps_sentences_and_rows(line, level):
    assert heading_level(line) == level


def test_each_offset_gets_the_heading_path_above_it_and_the_title_joins_its_wrapped_lines():
    sections = Sections(POLICY)
    assert sections.title == "Research Data Management Policy of the Coastal Sediment Dynamics Lab"
    assert sections.at(0) == ""
    assert sections.at(POLICY.index("The lab collects")) == "1. Purpose and Scope"
    deadline = POLICY.index("Deposit must happen")
    assert sections.at(deadline) == "7. Sharing and Publication > 7.1 Deposit in the repository"
    # a wrapped list step opens no section; a sibling replaces its sibling, a new chapter the whole path
    assert sections.at(POLICY.index("the Git server")) == "7. Sharing and Publication > 7.1 Deposit in the repository"
    assert sections.at(POLICY.index("CC BY")) == "7. Sharing and Publication > 7.2 Licences"
    assert sections.at(len(POLICY) - 1) == "8. Incidents"


def test_a_first_line_that_reads_as_a_sentence_is_no_title():
    assert Sections("This report covers the year.\n1. Scope\n").title == ""
    assert Sections("Leave type: Sick | Days: 10\n").title == ""
