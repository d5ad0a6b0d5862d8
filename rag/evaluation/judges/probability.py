"""``probability``, the offline RAG-triad judge: a local instruct LLM's P("yes"), combined with cheap
signals, calibrated.

Each check is ONE forward pass of a llama.cpp model (``max_tokens=1``, no generation): the
model reads a yes/no question and we read the probability of its first token being "yes"
against "no" (``top_logprobs``). That probability alone is badly calibrated (the 1.5B Qwen
leans to "yes"), so the score is a small logistic model over a handful of features:

- groundedness (one check per claim = sentence of the answer; abstentions make no claim): logit
  P(yes) of the weakest claim, the mean claim logit, the lexical judge's logit, and the numbers
  of the claims that the context lacks or gives for something else (a swapped number);
- context relevance: logit P(yes) that the passage holds the needed information, the MiniLM
  cosine (best window), the share of key question words present;
- answer relevance: logit P(yes) that the response addresses the question, the MiniLM cosine.

The coefficients are constants below, fitted by ``bench/calibrate_judge.py`` (class-balanced,
L2-regularised, signs bounded so a score never falls as P(yes) rises). ``score >= 0.5`` means
grounded / relevant. Measured quality and cost: see that script's output; in short, with the
1.5B model this judge catches swapped numbers/entities and flipped negations that the lexical
judge passes, but it is weaker than the lexical judge on BEGIN-style chit-chat and on MS MARCO.

Prompts put what is shared first (the context, or the question) and what varies last (the
claim, the passage), so llama.cpp reuses the KV cache of the shared prefix: the claims of one
answer pay only for their own tokens. Long texts are cut to the windows most similar to what
is judged, so that a prompt fits the 4096-token window.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rag.evaluation.judges import Judge
from rag.evaluation.judges.lexical import (
    FUNCTION_WORDS,
    QUESTION_WORDS,
    LocalJudge,
    is_refusal,
    sentences,
    stem,
    words,
)
from rag.text_units import shorten

Embed = Callable[[list[str]], np.ndarray]

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
CONTEXT_WINDOW = 4096
PROMPT_VERSION = "pj-v3"  # v3: each claim against its own evidence  # change when a prompt changes: the calibration cache keys on it

LOGIT_CLIP = 10.0  # |logit| cap: P(yes) of 1e-9 and 1e-5 mean the same "no"
TOP_LOGPROBS = 20
YES = frozenset({"yes", "y", "true", "supported", "correct"})
NO = frozenset({"no", "n", "false", "not", "unsupported", "incorrect"})

# ---------------------------------------------------------------------------------- prompts

# Each prompt is (system, user prefix, user suffix); the varying text goes between prefix and suffix.
# Wording chosen on 14 hand-written claims (not from any benchmark set): a plain system prompt and
# the question restated after the claim separated swapped numbers/entities best (AUC 0.92 vs 0.83-0.88
# for a long "strict fact checker" system prompt or the question before the claim).
SYSTEM = "You are a careful assistant. Answer with one word: yes or no."
GROUNDED_USER = "Source:\n{context}\n\nStatement: "
# With the question known (an evaluation row), it heads each claim's check: answers restate what was asked
# ("a full-time Northwind Robotics employee gets ...") and the evidence row does not, so without it the 1.5B
# doubted right claims (P(yes) 0.55-0.67). It makes the model more willing to say yes to wrong claims as well
# (a swapped row: 0.70 -> 0.85), which the explicit checks then catch; the calibration sets have no questions,
# so their prompts, and the fit, are unchanged. On the sample's 36 labelled answers: right ones >= 0.5 17 -> 22
# of 25, wrong ones < 0.5 9 -> 8 of 11, AUC 0.87 -> 0.95 (bench/verdict_check.py --rejudge).
GROUNDED_ASKED = "Question: {question}\n\n"
GROUNDED_SUFFIX = ("\n\nAccording to the source, is this statement true? "
                   "Check every number, name and negation. Answer yes or no.")
CONTEXT_USER = "Question: {question}\n\nPassage:\n"
CONTEXT_SUFFIX = ("\n\nDoes this passage contain the information needed to answer the question "
                  "(for the same person, thing, place and time)? Answer yes or no.")
ANSWER_USER = "Question: {question}\n\nResponse: "
ANSWER_SUFFIX = ("\n\nDoes this response address the question, attempting to answer what was asked "
                 "(right or wrong)? Answer yes or no.")

# ---------------------------------------------------------------------------------- calibration
# Logistic models: score = sigmoid(bias + sum(weight * feature)), features in FEATURES order.
# Groundedness refitted 2026-12-07 (prompts pj-v3: each claim against its own evidence, with the
# explicit checks of rag/evaluation/evidence.py as features; `bench/calibrate_judge.py --only
# begin,g_adversarial`); relevance fitted 2026-12-01 (pj-v2). With Qwen2.5-Coder-1.5B-Instruct
# Q4_K_M: class-balanced, each dataset weighted equally, L2 0.05 on standardised
# features, signs bounded (support evidence >= 0, number mismatches <= 0); fitted on all rows after
# a dev / held-out check that the script prints (split by a hash of the item id). Rows:
#   groundedness: 100 BEGIN dev (WoW) + 106 bench/judge_sets/groundedness_adversarial.jsonl
#                 + 36 bench/judge_sets/groundedness_tables.jsonl (table rows as ingest writes them)
#   context_relevance: 50 MS MARCO + 56 HotpotQA dev paragraphs (14 questions x 2 supporting,
#                      2 distractors) + 51 bench/judge_sets/context_relevance_adversarial.jsonl
#   answer_relevance: 30 HotpotQA-derived pairs (gold-answer sentence vs another question's answer
#                     sentence or a distractor sentence)
# The fit leaves the lexical weight at 0 for groundedness: on BEGIN word overlap marks support, on the
# adversarial set (swaps, flips, free paraphrases) it marks the opposite, and a sign bound keeps it
# from learning "fewer shared words = better".
FEATURES = {
    "groundedness": ("min_logit", "mean_logit", "lexical_logit", "number_mismatch", "names_absent", "negation_differs",
                     "clean_support"),
    "context_relevance": ("logit", "cosine", "coverage"),
    "answer_relevance": ("logit", "cosine"),
}
COEFFICIENTS: dict[str, dict[str, Any]] = {
    "groundedness": {"bias": -1.088, "weights": (0.475, 0.649, 0.0, 0.0, -0.487, -0.265, 0.269)},
    "context_relevance": {"bias": -3.195, "weights": (1.563, 1.795, 0.414)},
    "answer_relevance": {"bias": -1.562, "weights": (0.937, 3.137)},
}

MAX_CLAIMS = 12  # longer answers: neighbouring sentences are judged together
LIST_NUMBER = re.compile(r"\(?(\d{1,2}(\.\d{1,2})*|[a-z])[.)]")  # "3." "2.1." "b)" at a list item's start
MIN_CLAIM_WORDS = 4  # "Yes." or "It is." is no claim of its own: it joins a neighbour
MAX_CLAIM_TOKENS = 256
WINDOW_WORDS = 80  # a long context is cut into windows of about this many words
SAFETY_TOKENS = 48  # chat template and rounding
CONTRADICTED_CAP = 0.1  # groundedness of an answer with a claim whose number the evidence contradicts


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))


def p_yes(response: dict) -> float:
    """P(yes) / (P(yes) + P(no)) over the first token's top alternatives (any case or spacing).

    0.5 when neither appears (the model wanted to say something else: no evidence either way).
    """
    try:
        top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return 0.5
    yes = no = 0.0
    for item in top:
        token = str(item.get("token", "")).strip().lower().strip(".,:!\"'")
        if token in YES:
            yes += math.exp(item["logprob"])
        elif token in NO:
            no += math.exp(item["logprob"])
    return yes / (yes + no) if yes + no > 0 else 0.5


# Where the answer says it found something, not what: "According to source [2], ..." and short
# sentences like "This is stated in Section 6.2 of the handbook." They name sources, not facts; the
# citation is checked by the sources shown, so they are no claim for groundedness.
ATTRIBUTION = re.compile(r"^\s*(?:according to|as (?:stated|described|mentioned) in|based on)\s+[^,]{1,90},\s*", re.I)
CITATION_ONLY = re.compile(
    r"^\s*(?:this|that|these|the (?:above|answer|information|details?))\b[^.]{0,40}\b(?:is|are|was|were|can be|"
    r"may be)\s+(?:stated|found|mentioned|given|described|listed|specified|written|explained|shown)\b", re.I)
MAX_CITATION_WORDS = 25
# A line of a source list under the answer: "[1] on page 5, under "5. Information Security"" or
# "- Source [2]: page 3". It says where, not what (and its "5." would split it into fragments).
SOURCE_LINE = re.compile(r"^\s*(?:[-*\u2022]\s*)?(?:sources?\s*)?\[\d+\]\s*[,:;-]?\s*\(?(?:(?:on|at|in|from)\s+)?"
                         r"(?:page|p\.|pp\.|section|under)\b", re.I)
# How the answer will be found, not what it is: "To determine who approves ..., we need to look at the
# thresholds." "Let's look at the table." Only short sentences (a long one may state facts as well).
PLANNING = re.compile(
    r"^\s*(?:to (?:determine|find(?: out)?|answer(?: this| the question)?|work out|calculate|identify|figure out)\b"
    r"[^.]{0,160},\s*(?:we|i|let's|let us|one)\s+(?:need|have|must|should|can|will|look|check|refer|consult)\b"
    r"|let(?:'s| us)\s+(?:look|check|see|find|start|break|go|examine|review)\b"
    r"|we (?:need|have) to (?:look|check|find|refer|consult|examine|review)\b)", re.I)
MAX_PLANNING_WORDS = 40
# "Therefore, the answer is: X" claims X.
CONCLUSION = re.compile(r"^\s*(?:(?:therefore|thus|so|hence|in (?:summary|conclusion)),?\s+)?the (?:final )?answer is\s*:?\s*"
                        r"(?=\S)", re.I)


def is_citation_only(sentence: str) -> bool:
    """A short sentence that only says where the answer was found."""
    return bool(CITATION_ONLY.search(sentence)) and len(sentence.split()) <= MAX_CITATION_WORDS


def is_planning(sentence: str) -> bool:
    """A short sentence that says how the answer will be found, not what it is."""
    return bool(PLANNING.search(sentence)) and len(sentence.split()) <= MAX_PLANNING_WORDS


def split_claims(answer: str, max_claims: int = MAX_CLAIMS) -> list[str]:
    """The answer's sentences that make a claim: abstentions dropped, fragments joined to a neighbour."""
    claims: list[str] = []
    pending = ""  # a fragment waiting for the sentence after it
    listed = "\n".join(line for line in (answer or "").splitlines() if not SOURCE_LINE.match(line))
    for sentence in sentences(listed):
        if is_refusal(sentence) or is_citation_only(sentence) or is_planning(sentence) \
                or LIST_NUMBER.fullmatch(sentence.strip()):
            continue  # a list's "3." is the next item's number, not a fragment of the sentence before
        sentence = ATTRIBUTION.sub("", sentence)  # "According to source [1], X" claims X
        sentence = CONCLUSION.sub("", sentence)
        if pending:
            sentence, pending = pending + " " + sentence, ""
        if sentence.rstrip().endswith(":"):  # "... as follows:" introduces the next sentence
            pending = sentence
            continue
        if len(sentence.split()) < MIN_CLAIM_WORDS:
            if claims:
                claims[-1] = claims[-1] + " " + sentence
            else:
                pending = sentence
            continue
        claims.append(sentence)
    if pending:
        claims.append(pending)
    while len(claims) > max_claims:  # merge neighbours pairwise until few enough
        claims = [" ".join(claims[i:i + 2]) for i in range(0, len(claims), 2)]
    return claims


def numbers(text: str) -> set[str]:
    """Numbers as the lexical judge reads them ("1,000" -> "1000", "two" -> "2")."""
    out = set()
    for w in words(text):
        if re.fullmatch(r"\d+(?:\.\d+)?", w):
            out.add(w.rstrip("0").rstrip(".") if "." in w else w)
    return out


class ProbabilityJudge:
    """Context relevance, groundedness and answer relevance from a local LLM's P(yes), calibrated."""

    threshold = 0.5
    THRESHOLD = 0.5
    name = "probability (local LLM P(yes) + lexical, calibrated)"

    def __init__(self, engine: Any, embed: Embed, lexical: LocalJudge | None = None, *,
                 context_window: int | None = None, coefficients: dict | None = None):
        self.engine = engine
        self.embed = embed
        self.lexical = lexical if lexical is not None else LocalJudge(embed)
        self.context_window = int(context_window or getattr(engine, "context_window", None) or CONTEXT_WINDOW)
        self.coefficients = coefficients or COEFFICIENTS
        self._fixed_tokens: dict[str, int] = {}
        # Counters for benchmarks: forward passes, prompt tokens computed and reused from the KV cache.
        self.stats = {"checks": 0, "prompt_n": 0, "cache_n": 0, "prompt_ms": 0.0}

    @classmethod
    def from_config(cls, config: Any, *, model: str | None = None, embed: Embed | None = None,
                    fetch: bool = True) -> "ProbabilityJudge":
        """The judge with the catalogue model ``model`` (default qwen2.5-coder-1.5b) or a GGUF path."""
        from rag.generation.llamacpp_engine import engine_for

        path = resolve_model(model or DEFAULT_MODEL, Path(config.model_cache_dir), fetch=fetch)
        # The generator's engine when it runs the same model: one copy of the weights per process.
        engine = engine_for(config, path)
        if embed is None:
            from rag.embedding import judge_embedder

            embed = judge_embedder(config)
        return cls(engine, embed, context_window=min(CONTEXT_WINDOW, engine.context_window))  # calibrated budget

    # ------------------------------------------------------------------ groundedness

    def groundedness(self, contexts: list[str] | str, answer: str, question: str | None = None) -> tuple[float, str]:
        """How well the contexts support every claim of the answer; with the ``question``, a claim
        that names no table row ("The answer is 25 days") is checked against the row asked about."""
        f = self.groundedness_features(contexts, answer, question)
        if "score" in f:  # decided without the model
            return f["score"], f["reason"]
        score = self.combine("groundedness", f)
        if f["contradicted"]:  # a number the evidence gives otherwise: not grounded, whatever P(yes) says
            score = min(score, CONTRADICTED_CAP)
        verdict = "grounded" if score >= self.threshold else "not grounded"
        supported = sum(s >= self.threshold for s in f["claim_scores"])
        n = len(f["claims"])
        parts = [f"{supported} of {n} claim{'s' * (n != 1)} supported"]
        for claim, p, claim_score, evidence in zip(f["claims"], f["claim_p"], f["claim_scores"], f["evidence"]):
            mark = "supported" if claim_score >= self.threshold else "NOT supported"
            line = f'{mark}: "{shorten(claim, 70)}" (P(yes) {p:.2f}; evidence: "{shorten(evidence.units[0], 90)}"'
            if evidence.contradicted:
                line += "; contradicted: " + ", ".join(evidence.contradicted[:2])
            missing = [*evidence.absent, *evidence.absent_names]
            if missing:
                line += "; not in the contexts: " + ", ".join(missing[:3])
            if evidence.negation_differs:
                line += "; negation differs from the evidence"
            parts.append(line + ")")
        return score, f"Answer looks {verdict}: " + "; ".join(parts) + "."

    def groundedness_features(self, contexts: list[str] | str, answer: str, question: str | None = None) -> dict:
        """Raw measures behind :meth:`groundedness`, or a final verdict.

        Claim by claim: each claim is judged (one LLM check) against its own evidence, the few
        context sentences or table rows most like it (:mod:`rag.evaluation.evidence`), and its
        numbers, names, negations and table cells are compared with that evidence explicitly.
        """
        verdict = self.verdict_without_model(contexts, answer)
        if verdict is not None:
            return verdict
        features = self.claim_evidence(contexts, answer, question)
        claim_p = [self._ask(user) for user in self.claim_prompts(features)]
        logits = [_logit(p) for p in claim_p]
        claim_scores = []
        for logit, one in zip(logits, features["per_claim"]):
            one = {**one, "min_logit": logit, "mean_logit": logit}
            claim_scores.append(CONTRADICTED_CAP if one["contradicted"] else self.combine("groundedness", one))
        weakest = int(np.argmin(claim_scores))
        features.update({
            "claim_p": claim_p, "claim_scores": claim_scores,
            "weakest": weakest, "weakest_claim": features["claims"][weakest], "weakest_p": claim_p[weakest],
            "min_logit": min(logits), "mean_logit": float(np.mean(logits)),
        })
        return features

    def claim_prompts(self, features: dict) -> list[str]:
        """The user message of each claim's check: its evidence (cut to fit the window), then the claim."""
        question = features.get("question")
        head = GROUNDED_ASKED.format(question=question) if question else ""
        fixed = self._fixed(head + GROUNDED_USER.format(context="") + GROUNDED_SUFFIX)
        prompts = []
        for found in features["evidence"]:
            budget = self.context_window - fixed - self._tokens(found.claim) - SAFETY_TOKENS
            source = self.fit_context(found.text, budget, query=found.claim)
            prompts.append(head + GROUNDED_USER.format(context=source) + found.claim + GROUNDED_SUFFIX)
        return prompts

    def claim_evidence(self, contexts: list[str] | str, answer: str, question: str | None = None) -> dict:
        """The measures of groundedness that need no LLM: each claim's evidence, its word support
        there, and the numbers, names, negations and table cells that disagree with it."""
        from rag.evaluation.evidence import EvidenceFinder

        if isinstance(contexts, str):
            contexts = [contexts]
        contexts = [c for c in contexts if c and c.strip()]
        claims = split_claims(answer)
        if self.engine is not None:  # (benchmarks build the LLM-free measures without a model)
            claims = [self._truncate(c, MAX_CLAIM_TOKENS) for c in claims]
        finder = EvidenceFinder(contexts, self.embed)
        evidence = [finder.find(claim, question) for claim in claims]
        per_claim = [{
            # The question's words count as support: restating the question adds no unsupported claim.
            "lexical_logit": _logit(self.lexical.groundedness([found.text, question or ""], found.claim)[0]),
            "number_mismatch": float(min(len(found.absent), 2)),
            "names_absent": float(min(len(found.absent_names), 2)),
            "negation_differs": float(found.negation_differs),
            "contradicted": len(found.contradicted),
        } for found in evidence]
        for one in per_claim:  # every word found in its evidence and nothing there disagreeing with it
            one["clean_support"] = float(one["lexical_logit"] >= 0 and not (
                one["number_mismatch"] or one["names_absent"] or one["negation_differs"] or one["contradicted"]))
        lexical = min(one["lexical_logit"] for one in per_claim)
        return {
            "claims": claims, "evidence": evidence, "per_claim": per_claim, "question": question,
            "lexical_logit": lexical, "lexical_score": _sigmoid(lexical),
            "number_mismatch": float(min(sum(len(e.absent) for e in evidence), 2)),
            "names_absent": float(min(sum(len(e.absent_names) for e in evidence), 2)),
            "negation_differs": float(any(e.negation_differs for e in evidence)),
            "clean_support": min(one["clean_support"] for one in per_claim),
            "number_mismatch_list": list(dict.fromkeys(n for e in evidence for n in e.absent)),
            "contradicted": [c for e in evidence for c in e.contradicted],
            "contradicted_n": sum(bool(e.contradicted) for e in evidence),
        }

    @staticmethod
    def verdict_without_model(contexts: list[str] | str, answer: str) -> dict | None:
        """The cases groundedness decides without the LLM (empty answer, abstention, no context)."""
        if isinstance(contexts, str):
            contexts = [contexts]
        if not sentences(answer or ""):
            return {"score": 0.0, "reason": "The answer is empty: nothing to check."}
        if not split_claims(answer):  # as in TruLens, an abstention makes no claim and counts as grounded
            return {"score": 1.0, "reason": "The answer abstains, so it makes no unsupported claim."}
        if not any(c and c.strip() for c in contexts or []):
            return {"score": 0.0, "reason": "There is no context to support the answer."}
        return None

    def _decide(self, metric: str, features: dict, yes: str, no: str) -> tuple[float, str]:
        """The calibrated score of ``features`` and the verdict word for it."""
        score = self.combine(metric, features)
        return score, yes if score >= self.threshold else no

    # ------------------------------------------------------------------ context relevance

    def context_relevance(self, question: str, context: str) -> tuple[float, str]:
        f = self.context_relevance_features(question, context)
        if "score" in f:
            return f["score"], f["reason"]
        score, verdict = self._decide("context_relevance", f, "relevant", "not relevant")
        detail = f"P(yes) {f['p']:.2f} that it holds the answer, embedding similarity {f['cosine']:.2f}"
        if f["key_words"]:
            detail += f", {f['key_present']}/{f['key_words']} key question words present"
            if f["missing_words"]:
                detail += " (missing: " + ", ".join(f["missing_words"][:4]) + ")"
        return score, f"Context looks {verdict}: {detail}."

    def context_relevance_features(self, question: str, context: str) -> dict:
        if not context or not context.strip():
            return {"score": 0.0, "reason": "The context is empty."}
        if not question or not question.strip():
            return {"score": 0.0, "reason": "The question is empty."}
        question = self._truncate(question, MAX_CLAIM_TOKENS)
        prefix = CONTEXT_USER.format(question=question)  # shared by every chunk of one question
        budget = self.context_window - self._fixed(prefix + CONTEXT_SUFFIX) - SAFETY_TOKENS
        passage = self.fit_context(context, budget, query=question)
        p = self._ask(prefix + passage + CONTEXT_SUFFIX)

        cosine = self.lexical.cosine(question, context)
        key = list(dict.fromkeys(w for w in words(question)
                                 if w not in FUNCTION_WORDS and w not in QUESTION_WORDS))
        present = {stem(w) for w in words(context)}
        missing = [w for w in key if stem(w) not in present]
        coverage = 1 - len(missing) / len(key) if key else 1.0
        return {"p": p, "logit": _logit(p), "cosine": float(cosine), "coverage": coverage,
                "key_words": len(key), "key_present": len(key) - len(missing), "missing_words": missing}

    # ------------------------------------------------------------------ answer relevance

    def answer_relevance(self, question: str, answer: str) -> tuple[float, str]:
        f = self.answer_relevance_features(question, answer)
        if "score" in f:
            return f["score"], f["reason"]
        score, verdict = self._decide("answer_relevance", f, "addresses", "does not address")
        return score, (f"Answer {verdict} the question: P(yes) {f['p']:.2f}, "
                       f"embedding similarity {f['cosine']:.2f}.")

    def answer_relevance_features(self, question: str, answer: str) -> dict:
        if not answer or not answer.strip():
            return {"score": 0.0, "reason": "The answer is empty."}
        if not question or not question.strip():
            return {"score": 0.0, "reason": "The question is empty."}
        # Abstaining sentences answer nothing (as in LocalJudge): judge whatever else the answer says.
        substance = " ".join(s for s in sentences(answer) if not is_refusal(s))
        if not substance:
            return {"score": 0.0, "reason": "The answer declines to answer (e.g. says the context lacks the information)."}
        question = self._truncate(question, MAX_CLAIM_TOKENS)
        prefix = ANSWER_USER.format(question=question)
        budget = self.context_window - self._fixed(prefix + ANSWER_SUFFIX) - SAFETY_TOKENS
        response = self.fit_context(substance, budget, query=question)
        p = self._ask(prefix + response + ANSWER_SUFFIX)
        cosine = self.lexical.cosine(question, substance)
        return {"p": p, "logit": _logit(p), "cosine": float(cosine)}

    # ------------------------------------------------------------------ shared

    def combine(self, metric: str, features: dict) -> float:
        """The calibrated score: sigmoid of the fitted linear model over FEATURES[metric]."""
        c = self.coefficients[metric]
        z = c["bias"] + sum(w * float(features[name]) for w, name in zip(c["weights"], FEATURES[metric]))
        return _sigmoid(z)

    def fit_context(self, text: str, budget: int, *, query: str) -> str:
        """``text`` if it fits ``budget`` tokens, else its windows most similar to ``query``, in order."""
        budget = max(budget, 32)
        if self._tokens(text) <= budget:
            return text
        windows = self._windows(text)
        vectors = np.asarray(self.embed(windows + [query]))
        similarity = vectors[:-1] @ vectors[-1]
        chosen, used = [], 0
        separator = self._tokens("\n...\n")
        for i in np.argsort(-similarity):
            cost = self._tokens(windows[i]) + separator
            if used + cost > budget:
                continue  # a shorter, less similar window may still fit
            chosen.append(int(i))
            used += cost
        if not chosen:  # even the best window is too long: cut it
            return self._truncate(windows[int(np.argmax(similarity))], budget)
        return "\n...\n".join(windows[i] for i in sorted(chosen))

    @staticmethod
    def _windows(text: str) -> list[str]:
        """Consecutive sentences grouped into windows of about WINDOW_WORDS words."""
        pieces: list[str] = []
        for s in sentences(text):
            tokens = s.split()
            pieces.extend(" ".join(tokens[i:i + WINDOW_WORDS]) for i in range(0, len(tokens), WINDOW_WORDS))
        windows, current, n = [], [], 0
        for piece in pieces:
            size = len(piece.split())
            if current and n + size > WINDOW_WORDS:
                windows.append(" ".join(current))
                current, n = [], 0
            current.append(piece)
            n += size
        if current:
            windows.append(" ".join(current))
        return windows or [text]

    def _truncate(self, text: str, max_tokens: int) -> str:
        if self._tokens(text) <= max_tokens:
            return text
        tokens = text.split()
        keep = max(1, int(len(tokens) * max_tokens / self._tokens(text) * 0.9))
        while keep > 1 and self._tokens(" ".join(tokens[:keep])) > max_tokens:
            keep = int(keep * 0.8)
        return " ".join(tokens[:keep])

    def _tokens(self, text: str) -> int:
        return int(self.engine.count_tokens(text))

    def _fixed(self, user: str) -> int:
        """Tokens of a prompt other than the text being fitted (cached per prompt)."""
        key = user
        count = self._fixed_tokens.get(key)
        if count is None:
            if len(self._fixed_tokens) >= 256:
                self._fixed_tokens.clear()
            count = self._fixed_tokens[key] = self._tokens(SYSTEM) + self._tokens(user)
        return count

    def _ask(self, user: str) -> float:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        response = self.engine.chat(messages, max_tokens=1, temperature=0.0, logprobs=True,
                                    top_logprobs=TOP_LOGPROBS, seed=0)
        timings = response.get("timings") or {} if isinstance(response, dict) else {}
        self.stats["checks"] += 1
        for key in ("prompt_n", "cache_n", "prompt_ms"):
            self.stats[key] += timings.get(key) or 0
        return p_yes(response)


def resolve_model(name_or_path: str, cache_dir: Path, *, fetch: bool = True) -> Path:
    """A catalogue name or GGUF path as a file path; falls back to ``<cache>/gguf/<file>``."""
    try:
        from rag.generation.catalogue import resolve_gguf
    except ImportError:  # catalogue missing: the conventional place
        resolve_gguf = None
    if resolve_gguf is not None:
        return Path(resolve_gguf(name_or_path, Path(cache_dir), fetch=fetch, progress=False))
    path = Path(os.path.expanduser(name_or_path))
    if path.is_file():
        return path
    files = {"qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
             "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
    return Path(cache_dir) / "gguf" / files.get(name_or_path, name_or_path)


def _make(config: Any, embed: Any) -> Any:
    judge = ProbabilityJudge.from_config(config, model=config.local_judge_model, embed=embed)
    calibrated = _calibrated(config)  # `rag judge calibrate` on this storage folder's labels
    if calibrated is not None:
        judge.coefficients = calibrated
    return judge


def _calibrated(config: Any) -> dict | None:
    from rag.evaluation.calibration import coefficients

    return coefficients(config.storage_dir, config.local_judge_model, COEFFICIENTS)


def _label(config: Any) -> str:
    """The judge's name in versions and cache keys: a calibration changes the scores, so it changes the name."""
    calibrated = _calibrated(config)
    if calibrated is None:
        return f"probability:{config.local_judge_model}"
    digest = hashlib.sha256(json.dumps(calibrated, sort_keys=True).encode()).hexdigest()[:8]
    return f"probability:{config.local_judge_model}+calibrated:{digest}"


PLUGIN = Judge(name="probability", help="local LLM P(yes) per claim + lexical + embedding, calibrated",
               make=_make, label=_label, order=1)
