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

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rag.evaluation.judges.lexical import FUNCTION_WORDS, stem, words
from rag.text_units import ROW_MARK, shorten, split_paragraphs

Embed = Callable[[list[str]], np.ndarray]

EVIDENCE_UNITS = 3  # units shown to the judge per claim
# A table row is shown with the prose just above its table, up to this many words: a row alone
# ("Leave type: Sick leave | Entitlement: 10 working days") does not say whom or what period it
# covers ("Full-time employees receive the entitlements below for each calendar year").
LEAD_IN_WORDS = 60
# Unit score = cosine + LEXICAL_WEIGHT * share of the claim's topic words in the unit
# + NUMBER_BONUS * share of the claim's numbers the unit holds; numbers the question already has
# ("AquaPure 3000") are in every unit about the topic and do not count.
LEXICAL_WEIGHT = 0.5
NUMBER_BONUS = 0.15
UNIT_WORDS = 2  # words after a number that say what it counts ("10 working days")
NOT_UNITS = FUNCTION_WORDS | frozenset("per and or to a an the of".split())


# ---------------------------------------------------------------- numbers in text

NEGATIONS = frozenset("not no never none nobody nothing neither nor without except only cannot unless".split())  # not topic words
NUMBER = re.compile(r"\d+(?:\.\d+)?")
NUMBER_REACH = 3  # words either side of a number that say what it counts ("45 minutes", "torque of 48 Nm")




_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


def _content(tokens: Sequence[str]) -> list[str]:
    """Stems of the topic words: no function words, negations, digits or number words."""
    return [stem(t) for t in tokens if t not in FUNCTION_WORDS and t not in NEGATIONS and not NUMBER.match(t)
            and t not in _UNITS and t not in _TENS and t not in _SCALES]


def _number_words(text: str) -> list[str]:
    """Lower-case words and digit groups; citation markers like [1] are not numbers of the text."""
    return re.findall(r"\d+(?:[.,]\d+)*|[a-z]+", re.sub(r"\[\d+\]", " ", text.lower()).replace("-", " "))


def number_tokens(text: str) -> list[tuple[int, float]]:
    """(position in ``_number_words(text)``, value) of each number: digits ("1,240", "3.5") and
    number words ("thirty-one", "four thousand", "twelve")."""
    tokens = _number_words(text)
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t[0].isdigit():
            try:
                value = float(t.replace(",", "")) if re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?", t) else None
            except ValueError:
                value = None
            if value is not None:
                if i + 1 < len(tokens) and tokens[i + 1] in _SCALES:
                    value *= _SCALES[tokens[i + 1]]
                    i += 1
                out.append((i, value))
            i += 1
            continue
        if t in _UNITS or t in _TENS:
            start, value, current = i, 0.0, 0.0
            while i < len(tokens) and (tokens[i] in _UNITS or tokens[i] in _TENS or tokens[i] in _SCALES
                                       or (tokens[i] == "and" and current)):
                w = tokens[i]
                if w in _UNITS or w in _TENS:
                    current += _UNITS.get(w, 0) + _TENS.get(w, 0)
                elif w in _SCALES:
                    current = (current or 1) * _SCALES[w]
                    if _SCALES[w] >= 1000:
                        value, current = value + current, 0.0
                i += 1
            if tokens[i - 1] == "and":
                i -= 1
            out.append((start, value + current))
            continue
        i += 1
    return out


def _same_number(a: float, b: float) -> bool:
    """Equal, or equal after a change of unit by a power of ten (480 g = 0.48 kg, 2.4 m = 240 cm)."""
    return any(math.isclose(a * 10.0 ** k, b, rel_tol=1e-9, abs_tol=1e-9) for k in (-3, -2, -1, 0, 1, 2, 3))


def number_mismatches(claim: str, context: str) -> list[str]:
    """Numbers of the claim that the context does not give, and numbers the context gives but for
    something else: the claim's words around the number sit next to a different number in the
    context and never next to this one ("charges in 48 minutes" where it says 45 minutes, 48 Nm)."""
    claim_words, context_words = _number_words(claim), _number_words(context)
    in_claim, in_context = number_tokens(claim), number_tokens(context)

    def near(tokens: list[str], numbers_at: list[int], i: int, reach: int) -> set[str]:
        """Topic words within ``reach`` of position i, not past the next number on either side."""
        start = max([0, i - reach] + [k + 1 for k in numbers_at if k < i])
        end = min([len(tokens), i + reach + 1] + [k for k in numbers_at if k > i])
        return set(_content(tokens[start:end]))

    claim_at, context_at = [k for k, _ in in_claim], [k for k, _ in in_context]
    bad = []
    for i, value in in_claim:
        label = f"{value:g}"
        if value in (0, 1) and not claim_words[i][0].isdigit():  # "one of", "no one": rarely a quantity
            continue
        same = [j for j, v in in_context if _same_number(value, v)]
        if not same:
            bad.append(label)
            continue
        around = near(claim_words, claim_at, i, NUMBER_REACH)
        if not around:
            continue
        reach = NUMBER_REACH + 2  # a little slack: a paraphrase may move a word
        if any(around & near(context_words, context_at, j, reach) for j in same):
            continue
        # Bound to this number nowhere; a swap only if its words are bound to another number.
        if any(around & near(context_words, context_at, j, NUMBER_REACH)
               for j, v in in_context if not _same_number(value, v)):
            bad.append(label)
    return list(dict.fromkeys(bad))


@dataclass
class Evidence:
    """The units chosen for one claim, best first, and what the quantity check found."""

    claim: str
    units: list[str]
    scores: list[float]
    lead_ins: list[str] = field(default_factory=list)  # the prose introducing the tables of the rows in ``units``
    contradicted: list[str] = field(default_factory=list)  # "25 working days (evidence: 10 working days)"
    absent: list[str] = field(default_factory=list)  # numbers of the claim found in no context
    absent_names: list[str] = field(default_factory=list)  # capitalised names of the claim found in no context
    negation_differs: bool = False  # the claim negates where its evidence does not, or the reverse

    @property
    def text(self) -> str:
        return "\n".join([*self.lead_ins, *self.units])


def topic_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in FUNCTION_WORDS and not w[0].isdigit()}


def quantities(text: str) -> list[tuple[float, frozenset[str], str]]:
    """(value, unit stems, as written) for each number that is followed or preceded by a unit."""

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
MAX_CELL_WORDS = 10  # a longer cell (a note) is prose: it is not compared as a value


def _money_values(text: str) -> set[float]:
    found = set()
    for match in re.finditer(r"[$€£]\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", text):
        found.add(float(match.group(1).replace(",", "") + ("." + match.group(2) if match.group(2) else "")))
    return found


class EvidenceFinder:
    """Finds each claim's evidence among the units of a set of contexts (embedded once)."""

    def __init__(self, contexts: Sequence[str], embed: Embed, k: int = EVIDENCE_UNITS):
        self.units: list[str] = []
        self.lead_in: list[str] = []  # per unit: the prose above its table for a row, else ""
        for context in contexts:
            above = ""
            for paragraph in split_paragraphs(context):
                is_row = ROW_MARK in paragraph[0]
                self.units.extend(paragraph)
                self.lead_in.extend([above if is_row else ""] * len(paragraph))
                if not is_row:
                    above = lead_in(paragraph)
        self.k = k
        self.embed = embed
        self._stems = [topic_stems(u) for u in self.units]
        self._numbers = [set(numbers_of(u)) for u in self.units]
        self._vectors = np.asarray(embed(self.units)) if self.units else np.zeros((0, 1))
        self._text = " ".join(" ".join(contexts).lower().split())
        # Table rows as (unit index, {header: cell}), parsed once for every claim.
        self._rows = [(i, dict(cells)) for i, cells in ((i, row_cells(u)) for i, u in enumerate(self.units)
                                                         if ROW_MARK in u) if cells]

    def find(self, claim: str, question: str | None = None) -> Evidence:
        if not self.units:
            return Evidence(claim, [], [])

        claim_vector = np.asarray(self.embed([claim]))[0]
        cosine = self._vectors @ claim_vector
        wanted = topic_stems(claim)
        asked = set(numbers_of(question or ""))
        claim_numbers = [a for a in set(numbers_of(claim)) if not any(_same_number(a, q) for q in asked)]
        topic, scores, held, lexical = [], [], [], []
        for i in range(len(self.units)):
            lexical.append(len(wanted & self._stems[i]) / len(wanted) if wanted else 0.0)
            held.append(sum(any(_same_number(a, b) for b in self._numbers[i]) for a in claim_numbers))
            topic.append(float(cosine[i]) + LEXICAL_WEIGHT * lexical[i])
            scores.append(topic[-1] + NUMBER_BONUS * (held[i] / len(claim_numbers) if claim_numbers else 0.0))
        evidence = Evidence(claim, [], [])
        about = self._check_rows(evidence, topic)
        if question and about is not None and not evidence.contradicted:
            self._check_asked_row(evidence, question)
        if about is None:  # no table row speaks of the claim: the prose unit most about its topic
            about = int(np.argmax(topic))
            self._check_quantities(evidence, about, lexical)
        order = [i for i in np.argsort(-np.asarray(scores)) if i != about][:self.k - 1]
        if claim_numbers:  # the unit holding most of the claim's own numbers is always shown (they are its facts)
            numbered = max(range(len(self.units)), key=lambda i: (held[i], scores[i]))
            if held[numbered] * 2 >= len(claim_numbers) and numbered != about and numbered not in order:
                order = [*order[:self.k - 2], numbered]
        order = sorted([about, *order], key=lambda i: -scores[i])
        evidence.units, evidence.scores = [self.units[i] for i in order], [scores[i] for i in order]
        evidence.lead_ins = list(dict.fromkeys(self.lead_in[i] for i in order if self.lead_in[i]))
        asked = (question or "").lower()
        evidence.absent_names = [n for n in names(claim) if n.lower() not in self._text and n.lower() not in asked]
        # A table row holds many cells, and a "No" in one of them is no negation of the claim.
        evidence.negation_differs = ROW_MARK not in self.units[about] and negates(claim) != negates(self.units[about])
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
        claim_numbers = amounts(evidence.claim)
        money = sorted(_money_values(evidence.claim))
        rows = self._rows
        best: tuple | None = None
        for i, cells in rows:
            matched = {h for h, c in cells.items() if states(c, claim_words, claim_numbers, money)}
            if not matched:
                continue
            conflicts = []
            anchor = next(f"{h}: {c}" for h, c in cells.items() if h in matched)
            for j, others in rows:
                if j == i or others.keys() != cells.keys():
                    continue  # another table
                for header, cell in others.items():
                    if header not in matched and normalise(cell) != normalise(cells[header]) \
                            and states(cell, claim_words, claim_numbers, money):
                        conflicts.append(f'"{cell}": the row with {anchor} gives {header}: {cells[header]}')
            key = (not conflicts, len(matched), topic[i])
            if best is None or key > best[0]:
                best = (key, i, conflicts)
        if best is None:
            return None
        evidence.contradicted.extend(best[2])
        return best[1]

    def _check_asked_row(self, evidence: Evidence, question: str) -> None:
        """A claim that names no row ("The answer is 25 working days") answers the row the question
        asks about: contradicted when it gives another row's cell where that row says otherwise.

        The asked row is the one row of a table whose cells the question states (sick leave; the
        range that holds $3,200); a claim that itself names another row of that column is about
        that row, and a question that names two rows of a table asks about neither.
        """
        asked_words = normalise(question).split()
        asked_numbers, asked_money = amounts(question), sorted(_money_values(question))
        claim_words = normalise(evidence.claim).split()
        claim_numbers, claim_money = amounts(evidence.claim), sorted(_money_values(evidence.claim))
        rows = [cells for _, cells in self._rows]
        for table in {tuple(r) for r in rows}:
            same = [r for r in rows if tuple(r) == table]
            asked = [r for r in same if any(states(c, asked_words, asked_numbers, asked_money) for c in r.values())]
            if len(asked) != 1:
                continue
            row = asked[0]
            keys = {h for h, c in row.items() if states(c, asked_words, asked_numbers, asked_money)}
            others = [r for r in same if r is not row]
            if any(states(r[h], claim_words, claim_numbers, claim_money) and normalise(r[h]) != normalise(row[h])
                   for r in others for h in keys):
                continue  # the claim names another row itself
            for r in others:
                for header, cell in r.items():
                    if header in keys or normalise(cell) == normalise(row[header]):
                        continue
                    if states(cell, claim_words, claim_numbers, claim_money) \
                            and not states(row[header], claim_words, claim_numbers, claim_money):
                        anchor = "; ".join(f"{h}: {row[h]}" for h in sorted(keys))
                        evidence.contradicted.append(f'"{cell}": the row asked about ({anchor}) gives {header}: {row[header]}')

    def _check_quantities(self, evidence: Evidence, about: int, lexical: list[float]) -> None:
        """Contradicted: the unit most about the claim's topic counts the same thing with another value,
        and no unit with as many of the claim's words gives the claim's value ("place it in the pH 4.00
        buffer" is no contradiction of the step before it, "place it in the pH 7.00 buffer")."""

        everywhere = {v for numbers in self._numbers for v in numbers}
        stated = quantities(self.units[about])
        for value, unit, shown in quantities(evidence.claim):
            if not any(_same_number(value, v) for v in everywhere):
                evidence.absent.append(shown)
            same_unit = [(v, text) for v, u, text in stated if _same_unit(u, unit)]
            in_range = any(within(value, cell) for cell in self.units[about].split(ROW_MARK))
            if same_unit and not in_range and not any(_same_number(value, v) for v, _ in same_unit) \
                    and not self._gives(value, unit, [i for i, share in enumerate(lexical) if share >= lexical[about]]):
                evidence.contradicted.append(f"{shown} (evidence: {same_unit[0][1]})")

    def _gives(self, value: float, unit: frozenset[str], among: list[int]) -> bool:
        """Whether one of the units ``among`` counts ``unit`` with ``value``."""
        return any(_same_number(value, v) and _same_unit(u, unit) for i in among for v, u, _ in quantities(self.units[i]))


def lead_in(sentences: list[str]) -> str:
    """The opening of a prose paragraph, whole sentences up to ``LEAD_IN_WORDS`` words: a section's
    heading and the sentence that introduces its table usually come first."""
    kept, n = [], 0
    for sentence in sentences:
        n += len(sentence.split())
        if kept and n > LEAD_IN_WORDS:
            break
        kept.append(sentence)
    return shorten(" ".join(kept), LEAD_IN_WORDS * 12)


NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z]+(?:[ -][A-Z][a-zA-Z]+)*)")
CLAIM_NEGATIONS = frozenset("not no never none nobody nothing neither nor cannot".split())


def names(claim: str) -> list[str]:
    """Capitalised words or runs of them inside a sentence ("Margaret Oldroyd", "Harwell"): the
    names a claim commits to. Sentence-initial words are left out (they are capitalised anyway)."""
    text = re.sub(r"\[\d+\]", " ", claim)
    found = []
    for match in NAME.finditer(text):
        run = match.group(1).split(" ")
        while run and run[0].lower() in FUNCTION_WORDS:  # "answer is: The Department director": no name "The"
            run = run[1:]
        found.append(" ".join(run))
    return [n for n in dict.fromkeys(found) if n and n.lower() not in FUNCTION_WORDS and len(n) > 2]


def negates(text: str) -> bool:
    return any(w in CLAIM_NEGATIONS for w in words(text))


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
    words_ = normalise(cell).split()
    if not words_ or len(words_) > MAX_CELL_WORDS:  # notes and long cells are prose, not values
        return False
    if CURRENCY.search(cell):
        if any(within(v, cell) for v in claim_money):
            return True
    elif any(within(v, cell) and counts_the_same(v, claim_words, words_) for v in claim_numbers):
        return True
    numbers = [w for w in words_ if NUMBER.fullmatch(w)]
    present = set(claim_words)
    if numbers:  # the numbers, and a word of the cell that says what they count ("10 days": "working days")
        label = [w for w in words_ if w not in numbers and w not in FUNCTION_WORDS]
        return all(n in present for n in numbers) and (not label or any(w in present for w in label))
    content = [w for w in words_ if w not in FUNCTION_WORDS]
    if len(content) >= 2 and "".join(w[0] for w in content) in present:  # "CFO" for Chief Financial Officer
        return True
    if len(content) >= 4:  # a longer cell is stated by most of its words, stemmed ("replaced the membrane cap")
        stems = {stem(w) for w in present}
        return sum(stem(w) in stems for w in content) >= 0.75 * len(content)
    return bool(content) and all(w in present for w in content) and len(" ".join(content)) > 2


RANGE_LINKS = frozenset("to and or per of the a an from between".split())


def counts_the_same(value: float, claim_words: list[str], cell_words: list[str]) -> bool:
    """Whether the claim's ``value`` counts what a range cell counts: the cell's unit ("0 to 600 s")
    among the words just after the value in the claim ("120 seconds"; a unit-free cell takes any). An
    address "17" is not a delay inside "0 to 600 s"."""
    last_number = max((i for i, w in enumerate(cell_words) if NUMBER.fullmatch(w)), default=-1)
    unit = [w for w in cell_words[last_number + 1:] if w not in RANGE_LINKS][:UNIT_WORDS]  # "s" is a unit here
    if not unit:
        return True
    for i, word in enumerate(claim_words):
        if NUMBER.fullmatch(word) and float(word) == value:
            after = [w for w in claim_words[i + 1:i + 1 + NUMBER_REACH] if w not in FUNCTION_WORDS]
            # "s" for seconds, "min" for minutes: a short unit may be the start of the claim's word
            if any(stem(a) == stem(u) or (len(u) <= 3 and a.startswith(u)) for a in after for u in unit):
                return True
    return False


def normalise(text: str) -> str:
    """Lower case, words and numbers only, thousands separators dropped: for phrase matching."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", (text or "").lower())
    return " ".join(re.findall(r"[a-z0-9]+(?:\.\d+)?", text))  # "AP-PH1" -> "ap ph1", not "ph 1"


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


CODE = re.compile(r"\b[A-Za-z]+-?\d[\w-]*")  # "A09", "X6", "AP-MK2", "CR2450": names, not amounts


def amounts(text: str) -> list[float]:
    """The numbers of ``text`` that are amounts, not parts of names ("AquaPure 3000", "Tier 3",
    "Section 6.2") or codes ("A09" is no 9 that a range "above 4.0" could hold)."""
    text = CODE.sub(" ", text)
    named = {float(m.group(2)) for m in re.finditer(r"\b([A-Z][A-Za-z]*)\s+(\d+(?:\.\d+)?)\b", text)
             if m.group(1).lower() not in FUNCTION_WORDS}
    return [v for v in numbers_of(text) if v not in named]


def numbers_of(text: str) -> list[float]:
    """Every number of ``text`` (digits and number words)."""
    return [v for _, v in number_tokens(text)]
