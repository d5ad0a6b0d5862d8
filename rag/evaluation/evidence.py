"""Evidence for one claim: the few sentences or table rows of the contexts that bear on it, and an
explicit check of the claim's quantities against them.

A judge that reads a whole context (thousands of tokens) to check a one-line claim is slow and,
with a small model, easily distracted by a neighbouring fact ("25 working days" from the annual
leave row for a question on sick leave). So groundedness is judged claim by claim against the
claim's own evidence: the units (prose sentences, or table rows as ingest writes them, one row a
line with ``Header: value | Header: value``) most similar to the claim.

Quantities are compared explicitly: a number in the claim followed by a unit word ("25 working
days", "14 characters", "$3,200") is *contradicted* when the best evidence for that claim gives
the same unit with another value and never this one. Numbers that appear nowhere are reported
as *absent* (a claim may restate a number of the question, so absence alone is no contradiction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rag.evaluation.judges.lexical import FUNCTION_WORDS, stem, words

Embed = Callable[[list[str]], np.ndarray]

ROW_MARK = " | "  # ingest writes a table row as "Header: cell | Header: cell"
EVIDENCE_UNITS = 3  # units shown to the judge per claim
MAX_UNIT_WORDS = 120  # longer prose sentences are cut into pieces of this many words
# Unit score = cosine + LEXICAL_WEIGHT * share of the claim's topic words in the unit
# + NUMBER_BONUS when the unit holds one of the claim's numbers.
LEXICAL_WEIGHT = 0.5
NUMBER_BONUS = 0.15
UNIT_WORDS = 2  # words after a number that say what it counts ("10 working days")
NOT_UNITS = FUNCTION_WORDS | frozenset("per and or to a an the of".split())


@dataclass
class Evidence:
    """The units chosen for one claim, best first, and what the quantity check found."""

    claim: str
    units: list[str]
    scores: list[float]
    contradicted: list[str] = field(default_factory=list)  # "25 working days (evidence: 10 working days)"
    absent: list[str] = field(default_factory=list)  # numbers of the claim found in no context

    @property
    def text(self) -> str:
        return "\n".join(self.units)


def split_units(text: str) -> list[str]:
    """Table rows (one a line) and prose sentences (lines joined, then split at sentence ends)."""
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            joined = " ".join(prose)
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])", joined):
                tokens = sentence.split()
                out.extend(" ".join(tokens[i:i + MAX_UNIT_WORDS]) for i in range(0, len(tokens), MAX_UNIT_WORDS))
            prose.clear()

    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            flush()
        elif ROW_MARK in line:
            flush()
            out.append(line)
        else:
            prose.append(line)
    flush()
    return [u for u in out if re.search(r"\w", u)]


def topic_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in FUNCTION_WORDS and not w[0].isdigit()}


def quantities(text: str) -> list[tuple[float, frozenset[str], str]]:
    """(value, unit stems, as written) for each number that is followed or preceded by a unit."""
    from rag.evaluation.probability_judge import number_tokens, _number_words

    tokens = _number_words(text)
    money = _money_values(text)
    out = []
    for i, value in number_tokens(text):
        after = [t for t in tokens[i + 1:i + 1 + UNIT_WORDS + 1] if t not in NOT_UNITS and not t[0].isdigit()]
        unit = frozenset(stem(t) for t in after[:UNIT_WORDS])
        if value in money:  # "$3,200 must be approved": the unit is the currency, not the next words
            unit = frozenset({"$"})
        if not unit:
            continue
        shown = f"${value:,.2f}".replace(".00", "") if "$" in unit else " ".join([f"{value:g}", *after[:UNIT_WORDS]])
        out.append((value, unit, shown))
    return out


CURRENCY = re.compile(r"[$€£]")


def _money_values(text: str) -> set[float]:
    found = set()
    for match in re.finditer(r"[$€£]\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", text):
        found.add(float(match.group(1).replace(",", "") + ("." + match.group(2) if match.group(2) else "")))
    return found


class EvidenceFinder:
    """Finds each claim's evidence among the units of a set of contexts (embedded once)."""

    def __init__(self, contexts: Sequence[str], embed: Embed, k: int = EVIDENCE_UNITS):
        self.units = [u for c in contexts for u in split_units(c)]
        self.k = k
        self.embed = embed
        self._stems = [topic_stems(u) for u in self.units]
        self._numbers = [{v for v, _, _ in quantities_or_numbers(u)} for u in self.units]
        self._vectors = np.asarray(embed(self.units)) if self.units else np.zeros((0, 1))

    def find(self, claim: str) -> Evidence:
        if not self.units:
            return Evidence(claim, [], [])
        from rag.evaluation.probability_judge import _same_number

        claim_vector = np.asarray(self.embed([claim]))[0]
        cosine = self._vectors @ claim_vector
        wanted = topic_stems(claim)
        claim_numbers = {v for v, _, _ in quantities_or_numbers(claim)}
        topic, scores = [], []
        for i in range(len(self.units)):
            lexical = len(wanted & self._stems[i]) / len(wanted) if wanted else 0.0
            has_number = any(_same_number(a, b) for a in claim_numbers for b in self._numbers[i])
            topic.append(float(cosine[i]) + LEXICAL_WEIGHT * lexical)
            scores.append(topic[-1] + NUMBER_BONUS * has_number)
        evidence = Evidence(claim, [], [])
        about = self._check_rows(evidence, topic)
        if about is None:  # no table row speaks of the claim: the prose unit most about its topic
            about = int(np.argmax(topic))
            self._check_quantities(evidence, about)
        order = [i for i in np.argsort(-np.asarray(scores)) if i != about][:self.k - 1]
        order = sorted([about, *order], key=lambda i: -scores[i])
        evidence.units, evidence.scores = [self.units[i] for i in order], [scores[i] for i in order]
        evidence.contradicted = list(dict.fromkeys(evidence.contradicted))
        return evidence

    def _check_rows(self, evidence: Evidence, topic: list[float]) -> int | None:
        """The table row the claim speaks of, or None; its contradictions recorded in ``evidence``.

        A claim *states* a cell of a row when it gives that cell ("10 working days", "CFO", or an
        amount inside the cell's range "$500.01 to $5,000"); it *conflicts* with a row when it
        states another row's cell of a column where it does not state this row's. A claim that
        states some row without conflict is consistent with the table; one whose every stated row
        conflicts mixes rows (sick leave with the annual leave's 25 days): contradicted.
        """
        claim_words = normalise(evidence.claim).split()
        claim_numbers = [v for v, _, _ in quantities_or_numbers(evidence.claim)]
        money = sorted(_money_values(evidence.claim))
        rows = [(i, row_cells(u)) for i, u in enumerate(self.units) if ROW_MARK in u]
        rows = [(i, dict(cells)) for i, cells in rows if cells]
        best: tuple | None = None
        for i, cells in rows:
            matched = {h for h, c in cells.items() if states(c, claim_words, claim_numbers, money)}
            if not matched:
                continue
            conflicts = []
            for j, others in rows:
                if j == i or others.keys() != cells.keys():
                    continue  # another table
                for header, cell in others.items():
                    if header not in matched and normalise(cell) != normalise(cells[header]) \
                            and states(cell, claim_words, claim_numbers, money):
                        conflicts.append(f'"{cell}" (evidence: {header}: {cells[header]})')
            key = (not conflicts, len(matched), topic[i])
            if best is None or key > best[0]:
                best = (key, i, conflicts)
        if best is None:
            return None
        evidence.contradicted.extend(best[2])
        return best[1]

    def _check_quantities(self, evidence: Evidence, about: int) -> None:
        """Contradicted: the unit most about the claim's topic counts the same thing with another value."""
        from rag.evaluation.probability_judge import _same_number

        everywhere = {v for numbers in self._numbers for v in numbers}
        stated = quantities(self.units[about])
        for value, unit, shown in quantities(evidence.claim):
            if not any(_same_number(value, v) for v in everywhere):
                evidence.absent.append(shown)
            same_unit = [(v, text) for v, u, text in stated if _same_unit(u, unit)]
            in_range = any(within(value, cell) for cell in self.units[about].split(ROW_MARK))
            if same_unit and not in_range and not any(_same_number(value, v) for v, _ in same_unit):
                evidence.contradicted.append(f"{shown} (evidence: {same_unit[0][1]})")


def row_cells(row: str) -> list[tuple[str, str]]:
    """(header, cell) pairs of a row line "Header: cell | Header: cell" (cells without a header left out)."""
    cells = []
    for part in row.split(ROW_MARK):
        header, sep, cell = part.partition(":")
        if sep and header.strip() and cell.strip() and len(header.split()) <= 6:
            cells.append((header.strip(), cell.strip()))
    return cells


def states(cell: str, claim_words: list[str], claim_numbers: list[float], claim_money: list[float]) -> bool:
    """Whether a claim (normalised words, numbers, money amounts) states a table cell: a short
    cell's words and numbers all in the claim (a unit word may differ: "10 days" states "10
    working days"), or an amount of the claim inside the cell's range (money for money)."""
    amounts = claim_money if CURRENCY.search(cell) else claim_numbers
    if any(within(v, cell) for v in amounts):
        return True
    words_ = normalise(cell).split()
    if not words_ or len(words_) > 6:  # notes and long cells are prose, not values
        return False
    numbers = [w for w in words_ if w[0].isdigit()]
    present = set(claim_words)
    if numbers:
        return all(n in present for n in numbers) and (len(words_) == len(numbers)
                                                       or any(w in present for w in words_ if not w[0].isdigit()))
    content = [w for w in words_ if w not in FUNCTION_WORDS]
    return bool(content) and all(w in present for w in content) and len(" ".join(content)) > 2


def normalise(text: str) -> str:
    """Lower case, words and numbers only, thousands separators dropped: for phrase matching."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", (text or "").lower())
    return " ".join(re.findall(r"\d+(?:\.\d+)?|[a-z]+", text))


RANGE = re.compile(r"(?P<low>\d+(?:\.\d+)?)\s*(?:to|-|–|and)\s*\$?\s*(?P<high>\d+(?:\.\d+)?)")
OPEN_RANGE = re.compile(r"(?P<word>up to|under|below|less than|at most|above|over|more than|at least|from)\s*\$?\s*"
                        r"(?P<bound>\d+(?:\.\d+)?)")


def within(value: float, cell: str) -> bool:
    """Whether ``value`` lies in the range a cell states ("$500.01 to $5,000", "above $5,000", "up to 40")."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", cell.lower())
    match = RANGE.search(text)
    if match:
        return float(match["low"]) <= value <= float(match["high"])
    match = OPEN_RANGE.search(text)
    if match:
        bound = float(match["bound"])
        return value <= bound if match["word"] in ("up to", "under", "below", "less than", "at most") else value >= bound
    return False


def _same_unit(a: frozenset[str], b: frozenset[str]) -> bool:
    """Both money, or sharing a unit word ("working days" / "days")."""
    if ("$" in a) != ("$" in b):
        return False
    return "$" in a or bool(a & b)


def quantities_or_numbers(text: str) -> list[tuple[float, frozenset[str], str]]:
    """Every number of ``text`` (with its unit where it has one)."""
    from rag.evaluation.probability_judge import number_tokens

    return [(v, frozenset(), f"{v:g}") for _, v in number_tokens(text)]
