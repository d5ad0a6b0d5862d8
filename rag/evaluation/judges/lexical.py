"""``lexical``: an offline judge from the embedding model plus word matching, no LLM (fast, ~4,000 checks/s).

Every score here comes from all-MiniLM-L6-v2 embeddings and word matching. It cannot see
word order, negation or synonyms: it passes answers that swap numbers between two facts of the
context and fails faithful paraphrases (see the README's judge table). Each method returns ``(score, reason)``
with ``score`` in [0, 1]; ``score >= LocalJudge.THRESHOLD`` means relevant / grounded.

Raw measures are mapped to [0, 1] by a logistic squashing ``1 / (1 + exp(-STEEPNESS * (raw - mid)))``
whose midpoints are round numbers fixed in advance, so 0.5 is the decision boundary and the
order of the raw measure (hence AUC) is kept. ``bench/judges.py`` measures agreement with human
labels (BEGIN for groundedness, MS MARCO for context relevance).
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

from rag.evaluation.judges import Judge
from rag.text_units import split_units

Embed = Callable[[list[str]], np.ndarray]  # returns one L2-normalised row per text

# Function words: they glue a paraphrase together, so a missing one is weak evidence of an
# invented claim. Negations and personal pronouns are deliberately absent: an unsupported
# "not" flips a claim, and "I"/"you" mark opinions or chit-chat that no document supports.
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every either neither both all such other another
and or but nor so yet if then than as because while although though whether
of in on at to for from by with about into onto over under between through during before after
above below up down out off upon within without across along around against among toward towards
is am are was were be been being have has had having do does did doing done
will would shall should can could may might must
it its itself he him his himself she her hers herself they them their theirs themselves
who whom whose which what when where why how there here
also just very too quite rather only even still again further more most much many
s d ll m re ve
""".split())

# Words that carry the question's form rather than its topic; ignored when checking coverage.
QUESTION_WORDS = frozenset("""
what which who whom whose when where why how define definition meaning mean means explain
describe tell list name give example examples type types kind kinds does do is are can
""".split())

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}

# Abstentions such as "The context does not contain ..." or "I don't know".
REFUSAL = re.compile(
    r"\b(?:context|document|documents|text|passage|passages|source|sources|information|excerpt)s?"
    r"(?:\s+provided)?\s+(?:does|do)\s+not\s+(?:contain|mention|provide|include|say|specify|state|"
    r"discuss|cover|give)"
    r"|\b(?:i|we)\s+(?:do\s+not|did\s+not|could\s+not|cannot|can\s+not|am\s+unable\s+to)\s+(?:know|find|answer|tell|determine)"
    r"|\b(?:cannot|can\s+not|unable\s+to)\s+(?:be\s+)?(?:answer|determin|find|found|provide|say)"
    r"|\bnot\s+(?:enough|sufficient)\s+(?:information|context|details)"
    r"|\bno\s+(?:information|mention|details)\s+(?:about|on|regarding|of|is|are)\b"
    r"|\b(?:is|are|was|were)\s+not\s+(?:mentioned|specified|stated)\b"
    r"|\b(?:is|are|was|were)\s+not\s+(?:provided|given|included|found)\s+in\s+(?:the\s+)?(?:given\s+|provided\s+)?"
    r"(?:sources?|documents?|context|text|passages?)\b",
    re.IGNORECASE,
)

STEEPNESS = 15.0
DODGE_CAP = 0.3  # answer relevance of an on-topic answer that leaves out what was asked for

# What a question asks for, by its first words: an answer without such a thing dodges it.
ASKS_FOR = (
    (re.compile(r"^\s*(?:how\s+(?:many|much|long|often|far|old|big|large|high|fast|soon)|what\s+(?:is|are|was|were)\s+the\s+"
                r"(?:minimum|maximum|number|amount|percentage|rate|size|price|cost|length|duration|limit)\b)", re.I),
     "a number or amount"),
    (re.compile(r"^\s*(?:when|by\s+when|what\s+(?:year|date|day|month|time))\b", re.I), "a time or date"),
)
WHEN_WORDS = frozenset("""before after during within until by since once when while then immediately daily weekly monthly
yearly annually each every first last next end start beginning""".split()) | frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday year years month months week weeks day days hour hours "
    "minute minutes".split())


def expand_negations(text: str) -> str:
    """Lower-cased, with "can't" -> "can not", "didn't" -> "did not", so negations match and count."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\bcan't\b", "can not", text)
    text = re.sub(r"\bwon't\b", "will not", text)
    return text.replace("n't", " not")


def words(text: str) -> list[str]:
    """Word and number tokens: negations expanded, "1,000" -> "1000", "two" -> "2", "7th" -> "7"."""
    text = expand_negations(text)
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers like [1] are not claims
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    tokens = re.findall(r"\d+(?:\.\d+)?|[a-z]+", text)
    return [NUMBER_WORDS.get(t, t) for t in tokens if t not in ("th", "st", "nd", "rd")]


def stem(word: str) -> str:
    """Light suffix stripping so that "cardigans"/"cardigan" and "motivation"/"motive" match."""
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix in ("ational", "ization", "ations", "ation", "ments", "ment", "ings", "ing",
                   "ies", "ied", "edly", "ed", "ly", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p.strip() for p in parts if re.search(r"\w", p)]


def is_refusal(text: str) -> bool:
    return bool(REFUSAL.search(expand_negations(text)))


def expected_answer(question: str) -> str | None:
    """What kind of thing the question asks for ("a number or amount", "a time or date"), if clear."""
    for pattern, wanted in ASKS_FOR:
        if pattern.search(question or ""):
            return wanted
    return None


def gives(wanted: str, answer: str) -> bool:
    """Whether the answer contains the kind of thing asked for."""
    tokens = words(answer)
    has_number = any(t[0].isdigit() for t in tokens)
    if wanted == "a time or date":
        return has_number or any(t in WHEN_WORDS for t in tokens)
    return has_number


def squash(raw: float, mid: float) -> float:
    return 1.0 / (1.0 + math.exp(-STEEPNESS * (raw - mid)))


class LocalJudge:
    """Context relevance, groundedness and answer relevance without an LLM."""

    THRESHOLD = 0.5

    # Groundedness: share of the answer's (weighted) words missing from the context, measured
    # against length + PSEUDO_WORDS, so one missing word in a short answer is not a verdict but a
    # few are; an answer is grounded when under ~15% of it is unsupported (raw >= 0.85).
    FUNCTION_WORD_WEIGHT = 0.5
    PSEUDO_WORDS = 10
    GROUNDED_MID = 0.85

    # Context relevance: MiniLM cosine blended with the share of key question words present in
    # the text (MiniLM blurs rare names and numbers: "Ackley, Iowa" vs "Hockley County").
    # Passages that answer a question sit around cosine 0.7, same-topic non-answers around 0.6.
    COVERAGE_WEIGHT = 0.2
    CONTEXT_MID = 0.70
    # With the answer: half the above, half the share of the answer's new content in one passage.
    # A passage that holds the answer's fact sits near 0.6 (topical, fact present), a topical one
    # without it near 0.4.
    HELD_MID = 0.55
    # Answer relevance: cosine only, as a good answer need not repeat the question ("10 days.").
    # Unrelated text sits near 0.0-0.15 and terse on-topic answers from 0.3 up, so 0.3 splits
    # "about the question" from "about something else"; it cannot tell a right answer from a
    # wrong one on the same topic (that is correctness, not relevance).
    ANSWER_MID = 0.30
    WINDOW_WORDS = 100  # MiniLM was trained on <= 128 word pieces: score long chunks by their best window

    def __init__(self, embed: Embed):
        self.embed = embed
        # A question is judged against every retrieved chunk and its answer: embed it once.
        self._question_vectors: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ relevance

    def context_relevance(self, question: str, context: str, answer: str | None = None) -> tuple[float, str]:
        """How well the context's best passage bears on the question (and on the answer, when given).

        A long context is scored by its best few consecutive sentences or table rows, not as a
        whole: one row that answers the question makes the context relevant, however much else
        it holds. With an ``answer`` that does not abstain, a context that holds the answer's
        content (its numbers and topic words, in one passage) counts as relevant too: it is
        what the answer was built from.
        """
        if not context or not context.strip():
            return 0.0, "The context is empty."
        if not question or not question.strip():
            return 0.0, "The question is empty."
        cosine = self.cosine(question, context)
        key = list(dict.fromkeys(w for w in words(question)
                                 if w not in FUNCTION_WORDS and w not in QUESTION_WORDS))
        if not key:  # a question made only of function words: nothing to count
            return squash(cosine, self.CONTEXT_MID), f"Embedding similarity {cosine:.2f}."
        present = {stem(w) for w in words(context)}
        missing = [w for w in key if stem(w) not in present]
        coverage = 1 - len(missing) / len(key)
        raw = (1 - self.COVERAGE_WEIGHT) * cosine + self.COVERAGE_WEIGHT * coverage
        score = squash(raw, self.CONTEXT_MID)
        detail = f"embedding similarity {cosine:.2f}, {len(key) - len(missing)}/{len(key)} key question words present"
        if missing:
            detail += " (missing: " + ", ".join(missing[:4]) + ")"
        held = self.answer_support(context, answer, question) if answer else None
        if held is not None:
            # Holding the answer only counts for a context that is at least about the question.
            with_answer = squash(0.5 * raw + 0.5 * held, self.HELD_MID)
            if with_answer > score:
                score = with_answer
                detail += f"; it holds {held:.0%} of the answer's content in one passage"
        verdict = "relevant" if score >= self.THRESHOLD else "not relevant"
        return score, f"Context looks {verdict}: {detail}."

    def answer_support(self, context: str, answer: str, question: str = "") -> float | None:
        """Share of what the answer adds to the question (its words and numbers that the question
        does not have) that the context's best passage holds; None for an answer that abstains
        or adds nothing to look for."""
        substance = " ".join(s for s in sentences(answer) if not is_refusal(s))
        asked = {stem(w) for w in words(question)}
        wanted = {stem(w) for w in words(substance) if w not in FUNCTION_WORDS} - asked
        if not wanted:
            return None
        units = split_units(context) or [context]
        passages = [" ".join(units[i:i + 3]) for i in range(max(len(units) - 2, 1))]
        return max(len(wanted & {stem(w) for w in words(p)}) / len(wanted) for p in passages)

    def answer_relevance(self, question: str, answer: str) -> tuple[float, str]:
        if not answer or not answer.strip():
            return 0.0, "The answer is empty."
        if not question or not question.strip():
            return 0.0, "The question is empty."
        # Abstaining sentences do not answer anything; judge whatever else the answer says.
        substance = [s for s in sentences(answer) if not is_refusal(s)]
        if not substance:
            return 0.0, "The answer declines to answer (e.g. says the context lacks the information)."
        cosine = self.cosine(question, " ".join(substance))
        score = squash(cosine, self.ANSWER_MID)
        wanted = expected_answer(question)
        if wanted is not None and not gives(wanted, " ".join(substance)):
            # On topic, but without what was asked for ("how many" and no number): a dodge.
            score = min(score, DODGE_CAP)
            return score, f"Answer does not give what the question asks for ({wanted}; embedding similarity {cosine:.2f})."
        verdict = "is about" if score >= self.THRESHOLD else "is not about"
        return score, f"Answer {verdict} the question (embedding similarity {cosine:.2f})."

    def cosine(self, question: str, text: str) -> float:
        """The best cosine between the question and a passage of ``text`` (the probability judge uses it too)."""
        return float(np.max(self.embed(self._windows(text)) @ self._question_vector(question)))

    def _question_vector(self, question: str) -> np.ndarray:
        vector = self._question_vectors.get(question)
        if vector is None:
            if len(self._question_vectors) >= 1024:  # bounded: a long-lived judge sees many questions
                self._question_vectors.clear()
            vector = self._question_vectors[question] = np.asarray(self.embed([question]))[0]
        return vector

    def _windows(self, text: str) -> list[str]:
        """The text itself if short, else its passages of up to WINDOW_WORDS words: runs of
        consecutive sentences / table rows, so that every sentence appears whole in some window
        and one answering row is not diluted by the rest of a long chunk."""
        tokens = text.split()
        if len(tokens) <= self.WINDOW_WORDS:
            return [text]
        units = split_units(text)
        windows = []
        for i in range(len(units)):
            window, n = [], 0
            for unit in units[i:]:
                size = len(unit.split())
                if window and n + size > self.WINDOW_WORDS // 2:
                    break
                window.append(unit)
                n += size
            windows.append(" ".join(window))
        return windows or [text]

    # ------------------------------------------------------------------ groundedness

    def groundedness(self, contexts: list[str] | str, answer: str) -> tuple[float, str]:
        # Word matching only: on BEGIN, adding MiniLM similarity lowered AUC (0.97 -> 0.95),
        # because the embedding barely moves when an answer adds one invented detail.
        if isinstance(contexts, str):
            contexts = [contexts]
        context = "\n".join(c for c in contexts if c)
        answer_sentences = sentences(answer or "")
        if not answer_sentences:
            return 0.0, "The answer is empty: nothing to check."
        claims = [s for s in answer_sentences if not is_refusal(s)]
        if not claims:  # as in TruLens, an abstention makes no claim and counts as grounded
            return 1.0, "The answer abstains, so it makes no unsupported claim."
        if not context.strip():
            return 0.0, "There is no context to support the answer."

        support = {stem(w) for w in words(context)}
        total_missing = total_weight = 0.0
        weakest = (2.0, "", [])  # (raw score, sentence, its unsupported words)
        for sentence in claims:
            missing = weight = 0.0
            unsupported = []
            for word in words(sentence):
                w = self.FUNCTION_WORD_WEIGHT if word in FUNCTION_WORDS else 1.0
                weight += w
                if stem(word) not in support:
                    missing += w
                    if word not in FUNCTION_WORDS:
                        unsupported.append(word)
            total_missing += missing
            total_weight += weight
            raw = 1 - missing / (weight + self.PSEUDO_WORDS)
            if weight and raw < weakest[0]:
                weakest = (raw, sentence, unsupported)
        if not total_weight:  # e.g. only non-Latin script, which the word matching cannot read
            return 0.0, "The answer has no words this judge can check."

        overall = 1 - total_missing / (total_weight + self.PSEUDO_WORDS)
        # Half the whole answer, half its weakest sentence: one invented sentence in a long,
        # otherwise faithful answer must still pull the score down.
        raw = 0.5 * overall + 0.5 * weakest[0]
        score = squash(raw, self.GROUNDED_MID)
        _, sentence, unsupported = weakest
        if total_missing == 0:
            return score, "Every word of the answer is found in the context."
        short = sentence if len(sentence) <= 80 else sentence[:77] + "..."
        listed = ", ".join(dict.fromkeys(unsupported[:5])) or "only function words"
        return score, f"Least supported sentence: \"{short}\" (not in the context: {listed})."


PLUGIN = Judge(name="lexical", help="word matching + MiniLM cosine, no LLM (fast, order-blind)",
               make=lambda config, embed: LocalJudge(embed), order=2)
