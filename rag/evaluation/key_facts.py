"""Key facts of a reference answer, and whether an answer states them, leaves them out or contradicts them.

Token recall cannot tell "25 working days" from "10 working days": seven of eight words agree.
Here a reference answer is read as a handful of *facts* of a few kinds, and each is looked for
in the answer:

- ``number``: a value with its unit or label ("10 working days", "19200 baud", "30 min",
  "pH 7.00", "Address 17", "90-calendar-day", "15%"), or a range ("5 to 10 days"). Values are
  compared as numbers (``1,000`` = ``1000``, ``ten`` = ``10``); time units convert where exact
  (24 hours = 1 day, 2 weeks = 14 days, 12 months = 1 year). Qualifiers ("at least") are not
  compared. A value whose unit is only a label ("Address 17") matches the bare value ("is 17").
- ``money``: the same, in a currency ("$3,200", "$500.01 to $5,000", "EUR 40").
- ``date``: "3 March 2024", "March 3", "2024-03-03".
- ``code``: a token of letters and digits, or capitals joined by hyphens (X6, A09, AP-MK2):
  case-insensitive, whole token.
- ``person``: "Dr. Tomasz Weller" (a title, or two or three capitalised words that name no
  organisation): the surname must appear.
- ``role``: a role head noun (director, manager, officer, steward, committee, ...) with the word
  before it ("Department director", "line manager"), or an acronym (CFO): the head noun and
  that key modifier must appear (or the acronym of the whole role, "Chief Financial Officer" = CFO).
- ``name``: other capitalised names ("Halden Research Data Repository"): first and last word.
- ``polarity``: a reference that opens with "Yes" or "No", against the answer's first word.
- ``text``: an explicit key fact of none of these kinds ("dosing pump overrun"): every content
  word must appear (lightly stemmed: "locks" = "locked"; a word of 5 letters or more also
  as the start of a longer one: "probation" in "probationary").

A fact is *found*; *contradicted* when the answer gives another value of the same unit, another
code of the same shape, another role or another titled person, none of which the reference or
the question mentions ("25 working days" for "10 working days", "CFO" for "Department
director"); else *missing*.

Which facts are key. Explicit ``key_facts`` of a question are all key. Taken from the reference:
facts the question already states are left out (an echo proves nothing; unless the question
offers alternatives of that kind, "the line manager or the director?"), and so are facts in
brackets or in a non-restrictive clause (", who approves claims from $500.01 to $5,000"): those
are details. When the question is given, its question words say what kind of fact it asks for
("who" -> roles, people, names; "how many/long/often", "when" -> numbers, money, dates; "what",
"which" -> any), and the other facts are secondary: they do not count, unless none of the
asked kind is there. A person and a role in apposition ("the data steward, Dr. Tomasz Weller")
name one individual: either one found counts for both. A detail or secondary number, money,
date or code that the answer contradicts still caps the score, and so does an answer that
opens with "No" where the reference opens with "Yes" (or the other way round).

Score: 1.0 when every key fact is found; otherwise the share found, capped at ``CAP`` (0.3), so a
swapped or missing fact scores at most 0.3 whatever the word overlap. Wording is not blended in:
``token_recall`` and ``token_f1`` are their own columns, and blending them in would again
reward echoing the reference and penalise a correct paraphrase. Without any key fact the score
is the ``fallback`` the caller gives (token recall), and the reason says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from rag.text_units import shorten

CAP = 0.3

STOPWORDS = frozenset("""
a an the this that these those and or but nor so if then than as of in on at to for from by with
about into over under between through during before after is am are was were be been being have has
had do does did will would shall should can could may might must it its they them their there here
which who whom whose what when where why how also just very only any each per all some such
""".split())  # "not"/"no" stay: they flip a claim

# Words in front of a number that qualify it rather than name what it counts.
QUALIFIERS = frozenset("""
least most more less fewer than about around approximately roughly nearly almost up over under
within after before until every each only first last next exactly max min maximum minimum total
""".split())

# surface form -> (canonical unit, dimension, factor to the dimension's base)
_UNIT_TABLE: dict[str, tuple[str, str, float]] = {}


def _units(dimension: str, canonical: str, factor: float, *surfaces: str) -> None:
    for surface in (canonical, *surfaces):
        _UNIT_TABLE[surface] = (canonical, dimension, factor)


_units("time", "second", 1, "seconds", "sec", "secs")
_units("time", "minute", 60, "minutes", "min", "mins")
_units("time", "hour", 3600, "hours", "hr", "hrs")
_units("time", "day", 86400, "days")
_units("time", "week", 604800, "weeks", "wk", "wks")
_units("months", "month", 1, "months", "mo", "mos")
_units("months", "year", 12, "years", "yr", "yrs")
_units("percent", "percent", 1, "%", "pct", "percentage")
_units("characters", "character", 1, "characters", "char", "chars")
_units("data", "bit", 1, "bits")
_units("data", "byte", 8, "bytes")
_units("data", "kb", 8e3, "kilobyte", "kilobytes")
_units("data", "mb", 8e6, "megabyte", "megabytes")
_units("data", "gb", 8e9, "gigabyte", "gigabytes")
_units("data", "tb", 8e12, "terabyte", "terabytes")
_units("rate", "baud", 1, "bps", "bauds")
_units("rate", "kbps", 1e3)
_units("frequency", "hz", 1, "hertz")
_units("frequency", "khz", 1e3)
_units("frequency", "mhz", 1e6)
_units("frequency", "ghz", 1e9)
_units("voltage", "volt", 1, "volts")
_units("voltage", "mv", 1e-3, "millivolt", "millivolts")
_units("voltage", "kv", 1e3)
_units("current", "amp", 1, "amps", "ampere", "amperes")
_units("current", "ma", 1e-3, "milliamp", "milliamps")
_units("power", "watt", 1, "watts")
_units("power", "kw", 1e3, "kilowatt", "kilowatts")
_units("length", "mm", 1e-3, "millimetre", "millimetres", "millimeter", "millimeters")
_units("length", "cm", 1e-2, "centimetre", "centimetres", "centimeter", "centimeters")
_units("length", "metre", 1, "metres", "meter", "meters")
_units("length", "km", 1e3, "kilometre", "kilometres", "kilometer", "kilometers")
_units("length", "ft", 0.3048, "feet", "foot")
_units("length", "inch", 0.0254, "inches")
_units("mass", "mg", 1e-3, "milligram", "milligrams")
_units("mass", "gram", 1, "grams")
_units("mass", "kg", 1e3, "kilogram", "kilograms")
_units("mass", "lb", 453.592, "lbs", "pound", "pounds")
_units("volume", "ml", 1e-3, "millilitre", "millilitres", "milliliter", "milliliters")
_units("volume", "litre", 1, "litres", "liter", "liters")
_units("concentration", "ppm", 1, "mg/l")
_units("concentration", "ppb", 1e-3)
_units("pressure", "bar", 1e5, "bars")
_units("pressure", "psi", 6894.76)
_units("pressure", "kpa", 1e3)
_units("temperature", "celsius", 1, "°c", "degc", "degrees")
_units("ph", "ph", 1)
_units("clock", "clock", 1)  # a time of day, in minutes after midnight ("08:00", "5 pm")
# Single letters count as units only written onto the number ("30s", "24h", "5V").
ATTACHED_UNITS = {"s": "second", "h": "hour", "d": "day", "m": "metre", "g": "gram", "l": "litre", "v": "volt",
                  "a": "amp", "w": "watt", "c": "celsius"}
PREFIX_UNITS = {"ph"}  # written before the value: "pH 7.00"

CURRENCY_SYMBOLS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy"}
CURRENCY_WORDS = {"dollar": "usd", "dollars": "usd", "usd": "usd", "eur": "eur", "euro": "eur", "euros": "eur",
                  "gbp": "gbp", "chf": "chf", "francs": "chf", "yen": "jpy", "jpy": "jpy"}
MULTIPLIERS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "k": 1e3, "m": 1e6, "bn": 1e9}

SMALL_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
ORDINALS = {w: i for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)}
ORDINALS.update({"twentieth": 20, "thirtieth": 30})
UNIT_NEEDED = frozenset({"one", *ORDINALS})  # everyday words: numbers only before a unit ("the fourth day")
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())

ROLE_HEADS = frozenset("""
director manager officer steward supervisor lead leader head chair chairperson chairman committee board
administrator coordinator president owner custodian auditor secretary treasurer dean investigator
representative advisor adviser controller approver reviewer sponsor specialist analyst engineer technician
team desk department panel council
""".split())
# Heads that are everyday words too: a role only with a modifier ("team lead", "head of department").
AMBIGUOUS_HEADS = frozenset("lead head chair board team desk department panel council owner controller engineer "
                            "technician specialist analyst".split())
ROLE_ACRONYMS = {"ceo": "chief executive officer", "cfo": "chief financial officer", "cto": "chief technology officer",
                 "cio": "chief information officer", "coo": "chief operating officer",
                 "ciso": "chief information security officer", "cmo": "chief marketing officer",
                 "chro": "chief human resources officer", "dpo": "data protection officer",
                 "pi": "principal investigator", "vp": "vice president", "hr": "human resources",
                 "gm": "general manager"}
# Words in front of a role head that do not tell one role from another.
ROLE_NOISE = frozenset("""
your my his her our their its the a an any each every new same relevant responsible appropriate designated
respective own other current competent named assigned must can may should will would could not to by
""".split())
TITLES = ("Dr", "Prof", "Professor", "Mr", "Mrs", "Ms", "Mx", "Sir", "Dame")
# Words that make a capitalised phrase an organisation, place or thing rather than a person.
NOT_PERSON = frozenset("""
lab laboratory university college institute school department office repository company corporation corp inc
ltd llc gmbh group team committee board council center centre foundation agency ministry bank robotics systems
system services service solutions technologies technology hospital clinic association society project program
programme policy handbook guide manual act plan fund cluster storage data research network desk portal platform
unit division branch plant site building room street road avenue city county state river bay lake mount island
instruments science sciences studies dynamics engineering press journal review standard protocol
""".split()) | frozenset(MONTHS) | WEEKDAYS

NUMBER_KINDS = frozenset({"number", "money"})
VALUE_KINDS = frozenset({"number", "money", "date", "code", "polarity"})  # contradictions there are reliable
PEOPLE = frozenset({"role", "person", "name"})
QUANTITIES = frozenset({"number", "money", "date"})
ALL_KINDS = frozenset({"number", "money", "date", "code", "person", "role", "name", "text", "polarity"})
# Question words that ask for one kind of fact; any other question word ("what", "which") asks for any.
ASKS = ((re.compile(r"\b(?:to )?who(?:m|se)?\b"), PEOPLE),
        (re.compile(r"\bhow (?:many|much|long|often|quickly|soon|far|fast|big|large|old|high|low|frequently|"
                    r"early|late)\b"), QUANTITIES),
        (re.compile(r"\b(?:by |until |since )?when\b|\b(?:what|which) (?:date|time|day|year|month|deadline)\b"),
         QUANTITIES))
OPEN_QUESTION = re.compile(r"\b(?:what|which|where|why|how)\b")


@dataclass(frozen=True)
class Fact:
    """One fact, or one mention of a fact-like thing in an answer."""

    kind: str  # number | money | date | code | person | role | name | text | polarity
    text: str  # as written
    values: tuple[float, ...] = ()  # number/money: one value or (low, high); date: (year, month, day), 0 = not given
    unit: str = ""  # canonical unit, currency ("usd") or label word ("address"); "" = none
    words: tuple[str, ...] = ()  # role: (key modifier, head); person: surname last; name: its words; text: stems
    detail: bool = False  # in brackets or a non-restrictive clause of the text it came from
    start: int = 0

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class FactCheck:
    fact: Fact
    status: str  # found | missing | contradicted
    said: str | None = None  # what the answer says instead (contradicted)

    def __str__(self) -> str:
        if self.status == "contradicted":
            return f'missing "{self.fact.text}"; answer says {self.said}'
        return f'{self.status} "{self.fact.text}"'

    def as_detail(self) -> str:
        if self.fact.kind == "polarity":
            return f'answer says {self.said} where the reference says "{self.fact.text}"'
        return f'detail "{self.fact.text}" contradicted: answer says {self.said}'


@dataclass
class KeyFactResult:
    score: float | None
    reason: str
    checks: list[FactCheck] = field(default_factory=list)  # one per key fact
    contradicted_details: list[FactCheck] = field(default_factory=list)  # non-key facts the answer contradicts

    @property
    def fallback(self) -> bool:
        return not self.checks


# ---------------------------------------------------------------- reading text

_CLEAN = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u2212": "-", "\u00a0": " ", "\u202f": " ", "\u2009": " "})
POSSESSIVE_RE = re.compile(r"'s$")
CITATION_RE = re.compile(r"\[\d+(?:\s*[,-]\s*\d+)*\]")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z']*")
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUMWORD = "|".join(sorted([*SMALL_NUMBERS, *TENS], key=len, reverse=True))
_ORDWORD = "|".join(sorted(ORDINALS, key=len, reverse=True))
NUMBER_RE = re.compile(
    rf"(?<![\w.,])(?:(?P<cur>[$€£¥])\s?)?(?P<num>{_NUM})(?![\d])"
    rf"|(?<![\w-])(?P<words>{_ORDWORD}|(?:{_NUMWORD})(?:[\s-]+(?:and[\s-]+)?(?:{_NUMWORD}|hundred|thousand|million))*)"
    rf"(?![\w])",
    re.IGNORECASE)
CODE_RE = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*(?![\w-])"
                     r"|(?<![\w-])[A-Z]{2,}(?:-[A-Z0-9]+)+(?![\w-])")
CLOCK_RE = re.compile(r"(?<![\w:])(\d{1,2})(?::(\d{2}))?\s?([ap])\.?m\.?(?![a-z])|(?<![\w:])(\d{1,2}):(\d{2})(?![\d:])",
                      re.IGNORECASE)
_MONTH = r"(?P<m>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
DATE_RES = (
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<mn>\d{2})-(?P<d>\d{2})(?!\d)"),
    re.compile(rf"(?<![\w])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?(?![\w])",
               re.IGNORECASE),
    re.compile(rf"(?<![\w]){_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?(?![\w])", re.IGNORECASE),
    re.compile(rf"(?<![\w]){_MONTH}\s+(?P<y>\d{{4}})(?![\w])", re.IGNORECASE),
)
PERSON_RE = re.compile(rf"\b(?:{'|'.join(TITLES)})\.?\s+(?P<name>[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){{0,2}})")
CAPITAL_RE = re.compile(r"[A-Z][a-z'-]*(?:[A-Z][a-z'-]*)*$|[A-Z]{2,}$")
POLARITY_RE = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
RANGE_AHEAD_RE = re.compile(r"\s*(?:-|to|through|until|and)\s*[$€£¥]?\d", re.IGNORECASE)
RANGE_JOIN_RE = re.compile(r"\s*(?:-|to|through|until)\s*$|\s+and\s+$", re.IGNORECASE)


def clean(text: str | None) -> str:
    """The text with typographic quotes and dashes made plain and citation markers blanked (same length)."""
    text = (text or "").translate(_CLEAN)
    return CITATION_RE.sub(lambda m: " " * len(m.group()), text)


def stem(word: str) -> str:
    """A light stem, enough that "locks", "locked" and "locking" meet."""
    w = word.lower().replace("'s", "").strip("'")
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def content_stems(text: str) -> tuple[str, ...]:
    words = [w.lower() for w in WORD_RE.findall(clean(text))]
    return tuple(dict.fromkeys(stem(w) for w in words if w not in STOPWORDS))


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


class _Scanner:
    """Finds mentions in one text; each kind claims its characters so that later kinds skip them."""

    def __init__(self, text: str):
        self.text = clean(text)
        self.taken = [False] * len(self.text)
        self.asides = _aside_spans(self.text)
        self.found: list[Fact] = []

    def free(self, start: int, end: int) -> bool:
        return not any(self.taken[start:end])

    def add(self, kind: str, start: int, end: int, **kw) -> None:
        for i in range(start, end):
            self.taken[i] = True
        detail = any(a <= start < b for a, b in self.asides)
        self.found.append(Fact(kind, self.text[start:end].strip(), detail=detail, start=start, **kw))

    def scan(self) -> list[Fact]:
        for step in (self._dates, self._clocks, self._codes, self._numbers, self._persons, self._roles, self._names):
            step()
        return sorted(self.found, key=lambda f: f.start)

    # -- dates and times
    def _dates(self) -> None:
        for pattern in DATE_RES:
            for m in pattern.finditer(self.text):
                if not self.free(m.start(), m.end()):
                    continue
                parts = m.groupdict()
                if parts.get("m") == "may":
                    continue  # the verb
                month = int(parts["mn"]) if parts.get("mn") else MONTHS.get(parts["m"].lower().rstrip("."), 0)
                day, year = int(parts.get("d") or 0), int(parts.get("y") or 0)
                if not 1 <= month <= 12 or day > 31:
                    continue
                self.add("date", m.start(), m.end(), values=(year, month, day), unit="date")

    def _clocks(self) -> None:
        for m in CLOCK_RE.finditer(self.text):
            if not self.free(m.start(), m.end()):
                continue
            hour = int(m.group(1) or m.group(4))
            minute = int(m.group(2) or m.group(5) or 0)
            if m.group(3) and m.group(3).lower() == "p" and hour < 12:
                hour += 12
            if hour < 24 and minute < 60:
                self.add("number", m.start(), m.end(), values=(hour * 60 + minute,), unit="clock")

    # -- codes
    def _codes(self) -> None:
        for m in CODE_RE.finditer(self.text):
            token = m.group()
            head = token.split("-")[0]
            if re.fullmatch(r"\d+(?:\.\d+)?", head):  # "90-calendar-day": a number and its unit
                continue
            number_unit = re.fullmatch(r"\d+(?:\.\d+)?([A-Za-z%°]+)", token)
            if number_unit and (_unit_of(number_unit.group(1), attached=True)
                                or number_unit.group(1).lower() in ("st", "nd", "rd", "th", "am", "pm")
                                or number_unit.group(1).lower() in CURRENCY_WORDS | MULTIPLIERS.keys()):
                continue
            if self.free(m.start(), m.end()):
                self.add("code", m.start(), m.end(), unit=_shape(token), words=(token.lower(),))

    # -- numbers, money, ranges
    def _numbers(self) -> None:
        raw = []
        for m in NUMBER_RE.finditer(self.text):
            if not self.free(m.start(), m.end()):
                continue
            if m.group("num"):
                value = float(m.group("num").replace(",", ""))
                raw.append(self._number(m.start(), m.end(), value, CURRENCY_SYMBOLS.get(m.group("cur") or "")))
            else:
                value = _words_value(m.group("words"))
                item = self._number(m.start(), m.end(), value, None)
                if item is not None and (_known(item["unit"]) or m.group("words").lower() not in UNIT_NEEDED):
                    raw.append(item)
        raw = [r for r in raw if r is not None and r["value"] is not None]
        i = 0
        while i < len(raw):
            first = raw[i]
            if i + 1 < len(raw) and self._joins(first, raw[i + 1]):
                second = raw[i + 1]
                unit = second["unit"] or first["unit"]
                self.add("money" if _is_money(unit) else "number", first["start"], second["end"],
                         values=(first["value"], second["value"]), unit=unit)
                i += 2
                continue
            self.add("money" if _is_money(first["unit"]) else "number", first["start"], first["end"],
                     values=(first["value"],), unit=first["unit"])
            i += 1

    def _number(self, start: int, end: int, value: float | None, currency: str | None) -> dict | None:
        text = self.text
        unit, label_start = currency or "", start
        after = text[end:]
        attached = re.match(r"[A-Za-z%°][A-Za-z%°/]*", after)
        if attached:
            word = attached.group().lower()
            if word in ("st", "nd", "rd", "th"):
                end += attached.end()
            elif word in MULTIPLIERS and (currency or word in ("bn",)):
                value = None if value is None else value * MULTIPLIERS[word]
                end += attached.end()
            elif _unit_of(word, attached=True):
                unit = unit or _unit_of(word, attached=True)
                end += attached.end()
            else:
                return None  # part of a token that is no number ("2FA" when it was not a code)
        elif re.match(r"\s?%", after):
            unit, end = "percent", end + after.index("%") + 1
        if not unit or currency:
            pos = end
            words = []
            for w in re.finditer(r"(?:\s+|\s*-\s*)([A-Za-z%°][A-Za-z%°/]*)", text[end:]):
                if w.start() != pos - end or len(words) == 3:
                    break
                if w.group(1).lower() in STOPWORDS:
                    break
                words.append((w.group(1), end + w.end()))
                pos = end + w.end()
            scale = [x for x in words[:1] if x[0].lower() in ("thousand", "million", "billion")]
            if scale and value is not None:
                value *= MULTIPLIERS[scale[0][0].lower()]
                end, words = scale[0][1], words[1:]
            money = [x for x in words[:1] if x[0].lower() in CURRENCY_WORDS]
            known = next(((i, _unit_of(w)) for i, (w, _) in enumerate(words) if _unit_of(w)), None)
            if money and not unit:
                unit, end = CURRENCY_WORDS[money[0][0].lower()], money[0][1]
            elif known and not unit:
                unit, end = known[1], words[known[0]][1]
            elif not unit and not RANGE_AHEAD_RE.match(after):
                before = re.search(r"([A-Za-z][A-Za-z']*)\s+$", text[:start])
                prefix = before.group(1).lower() if before else ""
                if prefix in PREFIX_UNITS or (prefix and prefix not in STOPWORDS and prefix not in QUALIFIERS
                                              and prefix not in SMALL_NUMBERS and prefix not in TENS
                                              and not words):
                    unit, label_start = prefix, before.start(1)
                elif words and words[0][0].lower() not in QUALIFIERS:
                    unit, end = _singular(words[0][0]), words[0][1]
        return {"start": label_start, "end": end, "value": value, "unit": unit}

    def _joins(self, first: dict, second: dict) -> bool:
        """Whether two numbers form a range: "5 to 10 days", "$500.01 to $5,000", "between 5 and 10"."""
        gap = self.text[first["end"]:second["start"]]
        if not RANGE_JOIN_RE.match(gap) or first["value"] >= second["value"]:
            return False
        if first["unit"] and not (_is_money(first["unit"]) and first["unit"] == second["unit"]):
            return False  # "2 days to 3 weeks": two values, each with its unit
        if "and" in gap.lower():
            return bool(re.search(r"\bbetween\s+\S*$", self.text[:first["start"]], re.IGNORECASE))
        return True

    # -- people and roles
    def _persons(self) -> None:
        for m in PERSON_RE.finditer(self.text):
            if self.free(m.start(), m.end()):
                names = m.group("name").split()
                self.add("person", m.start(), m.end(), words=tuple(n.lower() for n in names))

    def _roles(self) -> None:
        tokens = list(WORD_RE.finditer(self.text))
        for i, tok in enumerate(tokens):
            word = tok.group()
            if word.lower() in ROLE_ACRONYMS and word.isupper():
                if self.free(tok.start(), tok.end()):
                    self.add("role", tok.start(), tok.end(), words=("", word.lower()))
                continue
            head = _singular(word)
            if head not in ROLE_HEADS or not self.free(tok.start(), tok.end()):
                continue
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt and _adjacent(self.text, tok, nxt) and _singular(nxt.group()) in ROLE_HEADS:
                continue  # "department director": the last head names the role
            mods, start = [], tok.start()
            j = i - 1
            while j >= 0 and len(mods) < 2 and _adjacent(self.text, tokens[j], tokens[j + 1]) \
                    and tokens[j].group().lower() not in ROLE_NOISE | STOPWORDS and self.free(*tokens[j].span()):
                mods.insert(0, tokens[j].group())
                start = tokens[j].start()
                j -= 1
            end = tok.end()
            if not mods:  # "director of finance", "head of the department"
                of = re.match(r"\s+of\s+(?:the\s+)?([A-Za-z][A-Za-z']*)", self.text[end:])
                if of and of.group(1).lower() not in STOPWORDS:
                    mods, end = [of.group(1)], end + of.end()
            if head in AMBIGUOUS_HEADS and not mods:
                continue
            key = mods[-1].lower() if mods else ""
            initials = "".join(w[0] for w in [*mods, word]).lower() if mods else ""
            self.add("role", start, end, words=(key, head), unit=initials)

    def _names(self) -> None:
        tokens = [t for t in WORD_RE.finditer(self.text) if self.free(*t.span())]
        run: list[re.Match] = []
        for tok in [*tokens, None]:
            joined = (tok is not None and run and _adjacent(self.text, run[-1], tok, gap=r"\s+"))
            if tok is not None and CAPITAL_RE.match(tok.group()) and (not run or joined):
                run.append(tok)
                continue
            if tok is not None and joined and tok.group().lower() in ("of", "and", "for", "the", "de", "van", "von"):
                run.append(tok)
                continue
            self._name_run(run)
            run = [tok] if tok is not None and CAPITAL_RE.match(tok.group()) else []

    def _name_run(self, run: list[re.Match]) -> None:
        while run and (not CAPITAL_RE.match(run[-1].group())):
            run = run[:-1]  # a trailing "of"
        if run and _sentence_start(self.text, run[0].start()):
            if run[0].group().lower() in STOPWORDS or len(run) == 1:
                run = run[1:]
        if not run:
            return
        after = self.text[run[-1].end():]
        if re.match(r"\s*\d", after):
            return  # "Tier 3", "AquaPure 3000": a label of the number
        words = tuple(POSSESSIVE_RE.sub("", t.group().lower()) for t in run)
        if len(words) == 1 and (len(words[0]) < 2 or words[0] in NOT_PERSON or words[0] in STOPWORDS):
            return
        person = (2 <= len(words) <= 3 and all(re.fullmatch(r"[A-Z][a-z'-]+", t.group()) for t in run)
                  and not set(words) & (NOT_PERSON | ROLE_HEADS | STOPWORDS))
        self.add("person" if person else "name", run[0].start(), run[-1].end(), words=words)


def _words(text: str) -> set[str]:
    """The lower-case words of a text, possessive "'s" dropped ("Northwind's" -> "northwind")."""
    return {POSSESSIVE_RE.sub("", w.lower()) for w in WORD_RE.findall(text)}


def _adjacent(text: str, a: re.Match, b: re.Match, gap: str = r"[\s-]+") -> bool:
    return re.fullmatch(gap, text[a.end():b.start()]) is not None


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\"'(")
    return not before or before[-1] in ".!?:;\n|*-"  # also a table cell or a list item


def _aside_spans(text: str) -> list[tuple[int, int]]:
    """Brackets and non-restrictive clauses (", who ...", ", which ..."): details, not the answer."""
    spans = [m.span() for m in re.finditer(r"\([^()]*\)", text)]
    spans += [m.span() for m in re.finditer(r",\s*(?:who|which|whose)\b.*?(?=;|\.(?!\d)|$)", text, re.IGNORECASE)]
    return spans


def _unit_of(word: str, attached: bool = False) -> str:
    w = word.lower().rstrip(".")
    if w in _UNIT_TABLE:
        return _UNIT_TABLE[w][0]
    if attached and w in ATTACHED_UNITS:
        return ATTACHED_UNITS[w]
    if attached and w.startswith("°"):
        return "celsius"
    return ""


def _dimension(unit: str) -> str:
    if unit in _UNIT_TABLE:
        return _UNIT_TABLE[unit][1]
    if unit in CURRENCY_WORDS.values():
        return f"money:{unit}"
    return f"label:{unit}" if unit else ""


def _is_money(unit: str) -> bool:
    return _dimension(unit).startswith("money:")


def _known(unit: str) -> bool:
    return bool(unit) and not _dimension(unit).startswith("label:")


def _factor(unit: str) -> float:
    return _UNIT_TABLE[unit][2] if unit in _UNIT_TABLE else 1.0


def _shape(code: str) -> str:
    return re.sub(r"\d", "9", re.sub(r"[A-Za-z]", "A", code))


def _words_value(text: str) -> float | None:
    if text.lower() in ORDINALS:
        return float(ORDINALS[text.lower()])
    total, current = 0, 0
    for word in re.split(r"[\s-]+", text.lower()):
        if word == "and" or not word:
            continue
        if word in SMALL_NUMBERS:
            current += SMALL_NUMBERS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in SCALES:
            total += max(current, 1) * SCALES[word]
            current = 0
    return float(total + current)


def polarity(text: str | None) -> Fact | None:
    """"Yes" or "No" when the text opens with it."""
    match = POLARITY_RE.match(clean(text))
    return Fact("polarity", match.group(1).capitalize(), words=(match.group(1).lower(),)) if match else None


def mentions(text: str | None) -> list[Fact]:
    """Every fact-like thing a text says, in order of appearance."""
    return _Scanner(text or "").scan()


def parse_key_fact(text: str) -> list[Fact]:
    """An explicit key fact ("10 working days") as facts of the kinds above; a ``text`` fact when none fits."""
    if text.strip().lower() in ("yes", "no"):
        return [polarity(text)]
    found = mentions(text)
    if len(found) == 1:  # the fact as the question set words it ("2 days per week")
        return [Fact(found[0].kind, text.strip(), found[0].values, found[0].unit, found[0].words)]
    if found:
        return [Fact(f.kind, f.text, f.values, f.unit, f.words) for f in found]
    return [Fact("text", text.strip(), words=content_stems(text))]


# ---------------------------------------------------------------- matching

def _same_value(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _values_agree(fact: Fact, value: float, unit: str) -> bool:
    """Whether ``value`` (in ``unit``) states one of the fact's values."""
    if fact.unit and unit and _known(fact.unit) and _known(unit):
        if _dimension(fact.unit) != _dimension(unit):
            return False
        return any(_same_value(v * _factor(fact.unit), value * _factor(unit)) for v in fact.values)
    return any(_same_value(v, value) for v in fact.values)


def _number_found(fact: Fact, said: Sequence[Fact]) -> bool:
    stated = [(v, m.unit) for m in said if m.kind in NUMBER_KINDS for v in m.values]
    return all(any(_values_agree(Fact(fact.kind, "", (v,), fact.unit), value, unit) for value, unit in stated)
               for v in fact.values)


def _comparable(fact: Fact, mention: Fact) -> bool:
    """Same kind of quantity: another value here is a different answer to the same thing."""
    if mention.kind not in NUMBER_KINDS or not fact.unit or not mention.unit:
        return False
    return _dimension(fact.unit) == _dimension(mention.unit)


def _date_agrees(a: Fact, b: Fact) -> bool:
    return all(x == y or not x or not y for x, y in zip(a.values, b.values))


def _role_matches(fact: Fact, words: set[str], said: Sequence[Fact], text: str) -> bool:
    modifier, head = fact.words
    if head in ROLE_ACRONYMS:  # "CFO": the acronym, or a role whose initials it is
        if re.search(rf"\b{head.upper()}\b", text):
            return True
        return any(m.kind == "role" and m.unit == head for m in said) or set(ROLE_ACRONYMS[head].split()) <= words
    if fact.unit and len(fact.unit) >= 3 and re.search(rf"\b{fact.unit.upper()}\b", text):
        return True  # "Chief Financial Officer" said as "CFO"
    heads = {head, head + "s", head + "es"}
    return bool(heads & words) and (not modifier or modifier in words or _singular(modifier) in words)


def _same_role(a: Fact, b: Fact) -> bool:
    """Whether two role mentions may name the same role (one lacking a modifier is not another role)."""
    (ma, ha), (mb, hb) = a.words, b.words
    if ha in ROLE_ACRONYMS or hb in ROLE_ACRONYMS:
        return ha == hb or a.unit == hb or b.unit == ha
    return ha == hb and (not ma or not mb or ma == mb)


def check_fact(fact: Fact, answer: str, said: Sequence[Fact] | None = None,
               known: Sequence[Fact] = (), question: str | None = None) -> FactCheck:
    """Whether ``answer`` states ``fact``; ``known``: what the reference and question mention (no contradiction);
    ``question``: an answer that states the fact but concludes another value for what was asked contradicts it."""
    text = clean(answer)
    said = mentions(answer) if said is None else said
    words = _words(text)
    if fact.kind in NUMBER_KINDS:
        rival = (lambda m: _comparable(fact, m) and len(m.values) >= len(fact.values)
                 and (len(fact.values) == 1 or len(m.values) == 2))
        check = _verdict(fact, _number_found(fact, said), said, known, rival)
        # "25 + 10 + 16 = 61 days": a bare 10 in a sum does not state "10 working days".
        return _concluded_otherwise(check, text, said, known, rival, question,
                                    lambda m: m.kind in NUMBER_KINDS and _number_found(fact, [m])
                                    and bool(m.unit or not fact.unit or not _known(fact.unit)))
    if fact.kind == "date":
        check = _verdict(fact, any(m.kind == "date" and _date_agrees(fact, m) for m in said), said, known,
                         lambda m: m.kind == "date")
        return _concluded_otherwise(check, text, said, known, lambda m: m.kind == "date", question,
                                    lambda m: m.kind == "date" and _date_agrees(fact, m))
    if fact.kind == "code":
        found = re.search(rf"(?<![A-Za-z0-9]){re.escape(fact.words[0])}(?![A-Za-z0-9])", text, re.IGNORECASE)
        rival = lambda m: m.kind == "code" and m.unit == fact.unit  # noqa: E731
        return _concluded_otherwise(_verdict(fact, found is not None, said, known, rival), text, said, known, rival,
                                    question, lambda m: m.kind == "code" and m.text.lower() == fact.words[0].lower())
    if fact.kind == "person":  # another titled person is another answer; a bare name may be anyone
        return _verdict(fact, fact.words[-1] in words, said, known,
                        lambda m: m.kind == "person" and re.match(rf"(?:{'|'.join(TITLES)})\b", m.text)
                        and fact.words[-1] not in _words(clean(m.text)),
                        states=lambda m: m.kind == "person" and fact.words[-1] in _words(clean(m.text)))
    if fact.kind == "role":
        return _verdict(fact, _role_matches(fact, words, said, text), said, known,
                        lambda m: m.kind == "role" and not _role_matches(fact, _words(clean(m.text)), [m], m.text),
                        states=lambda m: m.kind == "role" and _role_matches(fact, _words(clean(m.text)), [m], m.text),
                        speaks=_question_cover(text, question, fact))
    if fact.kind == "polarity":
        opens = polarity(answer)
        if opens is None:
            return FactCheck(fact, "missing")
        return FactCheck(fact, "found") if opens.words == fact.words else FactCheck(fact, "contradicted", opens.text)
    if fact.kind == "name":
        needed = {fact.words[0], fact.words[-1]}
        return FactCheck(fact, "found" if needed <= words else "missing")
    stems = {stem(w) for w in words}
    present = all(s in stems or (len(s) >= 5 and any(t.startswith(s) for t in stems)) for s in fact.words)
    return FactCheck(fact, "found" if present else "missing")


def _verdict(fact: Fact, found: bool, said: Sequence[Fact], known: Sequence[Fact],
             rival: Callable[[Fact], Any], states: Callable[[Fact], Any] | None = None,
             speaks: Callable[[Fact], tuple[tuple[int, int], int]] | None = None) -> FactCheck:
    """Found; else contradicted by the first rival mention the reference and question do not make; else missing.

    With ``states`` (which mentions state the fact): an answer that names a rival before the fact
    gives the rival as its answer ("the CFO must approve it; the other options (line manager,
    Department director) do not apply"), and the fact counts as contradicted. With ``speaks`` (how
    much of the question a mention's statement repeats), not when the fact's statement speaks for
    the question more than the rival's: an answer that first recites a table's rows ("Up to $500 |
    Approver: Line manager") and then concludes "the Department director must approve an expense
    claim of $3,200" has given the fact.
    """
    if found:
        first = next((m for m in said if states(m)), None) if states else None
        before = next((m for m in said if rival(m) and not _echoed(m, known)), None) if first else None
        if before is not None and before.start < first.start:
            best = max((speaks(m)[1] for m in said if states(m)), default=0) if speaks else -1
            if not speaks or speaks(before)[1] >= best:
                return FactCheck(fact, "contradicted", before.text)
        return FactCheck(fact, "found")
    other = next((m for m in said if rival(m) and not _echoed(m, known)), None)
    return FactCheck(fact, "contradicted", other.text) if other else FactCheck(fact, "missing")


# Question words that say how a value is asked for, not what it is about.
ASKING_WORDS = frozenset({"many", "much", "long", "often", "get", "give", "need", "required", "allowed"})
STATEMENT_BREAK_RE = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+|;\s+|\s+[-*\u2022]\s+(?=[A-Z0-9])")


def _statements(text: str) -> list[tuple[int, int]]:
    """Character spans of the answer's statements: sentences, lines, list items and "; " clauses."""
    spans, start = [], 0
    for m in STATEMENT_BREAK_RE.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def _concluded_otherwise(check: FactCheck, text: str, said: Sequence[Fact], known: Sequence[Fact],
                         rival: Callable[[Fact], Any], question: str | None,
                         states: Callable[[Fact], Any]) -> FactCheck:
    """A found fact counts as contradicted when another statement gives a rival value *for what was asked*.

    An answer that lists a table right ("Sick leave: 10 working days") and then concludes "so an
    employee gets 25 working days of paid sick leave" has said 25. A statement speaks for the
    question by how many of the question's subject words it repeats; the rival's statement must
    repeat at least half of them and more than every statement that gives the fact, so that listing
    the other rows ("Annual leave: 25 working days") or a second, less specific sentence is no
    contradiction.
    """
    cover = _question_cover(text, question, check.fact)
    if check.status != "found" or cover is None:
        return check
    stating = [cover(m) for m in said if states(m)]
    best = max((n for _, n in stating), default=0)
    stating_spans = {span for span, _ in stating}
    for m in said:
        if rival(m) and not states(m) and not _echoed(m, known):
            span, n = cover(m)
            if span not in stating_spans and n > best and 2 * n >= cover.subject_words:
                return FactCheck(check.fact, "contradicted", m.text)
    return check


def _question_cover(text: str, question: str | None,
                    fact: Fact) -> Callable[[Fact], tuple[tuple[int, int], int]] | None:
    """mention -> (its statement's span, how many of the question's subject words that statement repeats);
    None when the question has too few subject words to tell statements apart."""
    if not question:
        return None
    subject = set(content_stems(question)) - set(content_stems(fact.text)) - ASKING_WORDS
    if len(subject) < 2:
        return None
    spans = _statements(text)

    def cover(m: Fact) -> tuple[tuple[int, int], int]:
        span = next(((a, b) for a, b in spans if a <= m.start < b), spans[-1])
        return span, len(subject & set(content_stems(text[span[0]:span[1]])))

    cover.subject_words = len(subject)  # type: ignore[attr-defined]  (the "half of them" test needs it)
    return cover


def _echoed(mention: Fact, known: Sequence[Fact]) -> bool:
    """Whether the reference or the question already mentions this (then it contradicts nothing)."""
    if mention.kind in NUMBER_KINDS:  # every value it states is known ("$1,000 to $5,000" is not "to $5,000")
        numbers = [k for k in known if k.kind in NUMBER_KINDS]
        return all(any(_values_agree(k, v, mention.unit) for k in numbers) for v in mention.values)
    for k in known:
        if mention.kind == k.kind == "role":
            if _same_role(mention, k):
                return True
        elif mention.kind == k.kind == "date":
            if _date_agrees(mention, k):
                return True
        elif mention.kind == k.kind and (mention.words or mention.text.lower()) == (k.words or k.text.lower()):
            return True
        elif mention.kind == k.kind == "person" and mention.words[-1] == k.words[-1]:
            return True
    return False


# ---------------------------------------------------------------- which facts are key

def asked_kinds(question: str | None) -> frozenset[str]:
    """The kinds of fact a question asks for, from its question words (all kinds when unsure)."""
    if not question:
        return ALL_KINDS
    q = question.lower()
    kinds: set[str] = set()
    for pattern, wanted in ASKS:
        if pattern.search(q):
            kinds |= wanted
            q = pattern.sub(" ", q)
    if not kinds or OPEN_QUESTION.search(q):
        return ALL_KINDS
    return frozenset(kinds)


def reference_facts(reference: str, question: str | None = None) -> tuple[list[Fact], list[Fact]]:
    """``(key, other)`` facts of a reference answer: see the module docstring for which are key."""
    found = mentions(reference)
    asked = None
    if question:
        stated = mentions(question)
        found = [f for f in found if not _restated(f, question, stated, reference, found)]
        asked = asked_kinds(question)
    main = [f for f in found if not f.detail]
    key = [f for f in main if asked is None or f.kind in asked] or main
    return key, [f for f in found if f not in key]


def _restated(fact: Fact, question: str, stated: Sequence[Fact], reference: str, facts: Sequence[Fact]) -> bool:
    """Whether the question already states ``fact`` and offers nothing else in its place: "What does
    A09 mean?" states A09; "The line manager or the director?" offers a choice, so both stay."""
    if check_fact(fact, question, stated).status != "found":
        return False
    return not any(m.kind == fact.kind and check_fact(m, reference, facts).status != "found" for m in stated)


def explicit_facts(key_facts: Iterable[str]) -> list[Fact]:
    return [fact for text in key_facts if str(text).strip() for fact in parse_key_fact(str(text))]


# ---------------------------------------------------------------- the score

def key_fact_correctness(answer: str | None, reference: str | None, key_facts: Sequence[str] | None = None,
                         question: str | None = None, fallback: float | None = None) -> KeyFactResult:
    """Key-fact correctness of ``answer``: 1.0 when every key fact is stated, at most ``CAP`` otherwise.

    ``key_facts``: the question's explicit facts (then the reference is not searched);
    ``question``: leaves out facts it states and says which kind it asks for;
    ``fallback``: the score when there is no key fact (token recall, from the caller).
    """
    answer = answer or ""
    said = mentions(answer)
    known = [*mentions(reference), *mentions(question)]
    if key_facts:
        key, other = explicit_facts(key_facts), []
        known += key
    else:
        key, other = reference_facts(reference or "", question)
        other += [p for p in [polarity(reference)] if p is not None]  # "Yes"/"No": only a contradiction counts
    checks = [check_fact(f, answer, said, known, question) for f in key]
    if not key_facts:
        checks = _one_of_each_apposition(checks, reference or "")
    details = [c for c in (check_fact(f, answer, said, known) for f in other if f.kind in VALUE_KINDS)
               if c.status == "contradicted"]
    if not checks:
        score = fallback
        reason = "no key fact in the reference: token recall" + ("" if fallback is None else f" {fallback:.2f}")
        if details:
            score = min(score if score is not None else CAP, CAP)
            reason += f"; {details[0].as_detail()}"
        return KeyFactResult(score, reason, checks, details)
    found = sum(c.status == "found" for c in checks)
    contradicted = [str(c) for c in checks if c.status == "contradicted"] + [c.as_detail() for c in details]
    problems = contradicted + [str(c) for c in checks if c.status == "missing"]  # a wrong fact first
    if not problems:
        shown = ", ".join(f'"{c.fact.text}"' for c in checks)
        return KeyFactResult(1.0, shorten(f"{found} of {len(checks)} key facts found: {shown}", 160), checks, details)
    more = len(problems) - 1
    reason = problems[0] + (f" (+{more} more)" if more else "") + f"; {found} of {len(checks)} key facts found"
    return KeyFactResult(min(found / len(checks), CAP), shorten(reason, 160), checks, details)


def _one_of_each_apposition(checks: list[FactCheck], reference: str) -> list[FactCheck]:
    """A person and a role in apposition name one individual ("the data steward, Dr. Tomasz Weller"):
    an answer that names either has named them, unless it contradicts the other."""
    text = clean(reference)
    out = list(checks)
    for i, a in enumerate(checks):
        for j, b in enumerate(checks):
            if {a.fact.kind, b.fact.kind} != {"person", "role"} or a.fact.start >= b.fact.start:
                continue
            between = text[a.fact.start + len(a.fact.text):b.fact.start]
            if re.fullmatch(r"\s*,\s*(?:the\s+)?", between, re.IGNORECASE) is None:
                continue
            if a.status == "found" and b.status == "missing":
                out[j] = FactCheck(b.fact, "found")
            elif b.status == "found" and a.status == "missing":
                out[i] = FactCheck(a.fact, "found")
    return out
