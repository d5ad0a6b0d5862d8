"""Citation faithfulness: whether the source an answer cites for a sentence supports that sentence.

Groundedness asks whether *some* context supports each claim; a reader who follows a ``[2]`` to
check a fact needs source 2 to hold it. Here every sentence that cites sources (``[2]``,
``[1, 3]``, or "According to source [2], ...") is checked against the sources it cites, taken
together, with the question beside them (restating the question is no unsupported claim). A
sentence that only points ("This is stated in source [1].") lends its citation to the sentence
before it.

The check is the one groundedness makes without its LLM: the sentence's evidence in the cited
sources (:class:`rag.evaluation.evidence.EvidenceFinder`: the most similar sentences or table
rows, with numbers, names, negations and table cells compared explicitly) must hold its words
(:class:`rag.evaluation.judges.lexical.LocalJudge`). No LLM call: it costs an embedding of the
cited sources' sentences per row. The score is the share of citing sentences that their sources support; None
when the answer cites nothing. The reason names the first unsupported citation, and whether another
source holds the sentence (a citation to the wrong source) or none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from rag.evaluation.evidence import EvidenceFinder
from rag.evaluation.judges.lexical import is_refusal, sentences
from rag.evaluation.judges.probability import ATTRIBUTION, is_citation_only
from rag.text_units import shorten

MARKER = re.compile(r"\[(\d+(?:\s*[,;-]\s*\d+)*)\]")
MIN_CLAIM_WORDS = 3
# A quotation introduced by a colon ('..., which states: "..."'), at least five words long.
QUOTED = re.compile(r':\s*["\u201c]((?:\S+\s+){4,}[^"\u201d]*?)["\u201d]')
SUPPORTED_AT = 0.5


@dataclass
class CitedSentence:
    text: str  # without its markers and attribution ("According to source [1], ")
    cited: list[int] = field(default_factory=list)  # 1-based source numbers


def cited_sentences(answer: str) -> list[CitedSentence]:
    """The answer's sentences that cite sources, each with the source numbers it cites."""
    out: list[CitedSentence] = []
    for sentence in sentences(answer or ""):
        if is_refusal(sentence):
            continue
        numbers = _numbers(sentence)
        text = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", ATTRIBUTION.sub("", sentence))).strip()
        quoted = QUOTED.search(text)
        if quoted:  # 'It states: "Passwords must ..."': the quote is the claim, the lead-in only points
            text = quoted.group(1).strip()
        elif is_citation_only(sentence) or len(re.findall(r"\w+", text)) < MIN_CLAIM_WORDS:
            if out and numbers:  # "This is stated in [1]." or a bare "[2]": the sentence before cites it
                out[-1].cited = list(dict.fromkeys([*out[-1].cited, *numbers]))
            continue
        out.append(CitedSentence(text, numbers))
    return [s for s in out if s.cited]


def citation_faithfulness(answer: str, contexts: Sequence[str], judge: Any,
                          question: str | None = None) -> tuple[float | None, str]:
    """(share of citing sentences supported by the sources they cite, reason); (None, reason) without citations."""
    cited = cited_sentences(answer)
    if not cited:
        return None, "The answer cites no source."
    finders: dict[tuple[int, ...], EvidenceFinder] = {}  # each set of sources embedded once per answer

    def supports(numbers: tuple[int, ...], text: str) -> bool:
        if numbers not in finders:
            finders[numbers] = EvidenceFinder([contexts[n - 1] for n in numbers], judge.embed)
        return _supports(finders[numbers], text, judge, question)

    supported, problems = 0, []
    for sentence in cited:
        missing = [n for n in sentence.cited if not 1 <= n <= len(contexts)]
        if missing:
            problems.append(f"[{missing[0]}] cites no source (the answer had {len(contexts)})")
            continue
        if supports(tuple(sentence.cited), sentence.text):
            supported += 1
            continue
        cites = "".join(f"[{n}]" for n in sentence.cited)
        others = [n for n in range(1, len(contexts) + 1) if n not in sentence.cited and supports((n,), sentence.text)]
        where = f"source [{others[0]}] does" if others else "no source does"
        problems.append(f'{cites} does not support "{shorten(sentence.text, 80)}" ({where})')
    score = supported / len(cited)
    reason = f"{supported} of {len(cited)} citing sentences supported by the sources they cite"
    if problems:
        reason += "; " + problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    return score, reason


def _supports(finder: EvidenceFinder, sentence: str, judge: Any, question: str | None) -> bool:
    """The sentence's evidence in the finder's sources (their few most similar sentences or table
    rows) holds its words, and nothing there disagrees with its numbers, names, negation or table cells."""
    found = finder.find(sentence, question)
    if found.contradicted or found.absent or found.absent_names or found.negation_differs:
        return False
    words, _ = judge.groundedness([found.text, question or ""], sentence)
    return words >= SUPPORTED_AT


def _numbers(sentence: str) -> list[int]:
    found = []
    for group in MARKER.findall(sentence):
        for part in re.split(r"\s*[,;]\s*", group):
            if "-" in part:  # "[1-3]"
                low, high = (int(x) for x in part.split("-", 1))
                found += range(low, high + 1) if 0 < high - low < 10 else [low, high]
            else:
                found.append(int(part))
    return list(dict.fromkeys(found))
