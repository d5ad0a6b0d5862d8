"""Reference-based metrics: retrieval against evidence pages, answers against reference answers.

These need labelled questions (``evidence`` and ``reference_answer`` in the JSONL set) and
complement the reference-free RAG triad that TruLens computes.

Retrieval. A retrieved source *matches* an evidence item when it comes from the same file
(compared by base name, case-insensitively) and the evidence page lies within the source's
``page..page_end``; evidence without a page matches any source of that file; a gold passage
(``{"text": ...}``) matches a source containing at least ``PASSAGE_RECALL`` of its words.
Sources are ranked in the order the retriever returned them (after rerank).

- ``hit_rate@k``: 1 if any of the first k sources matches some evidence item, else 0.
- ``MRR``: 1 / rank of the first matching source (0 when none matches).
- ``nDCG@10``: binary gains, where a source gains 1 only for evidence not already covered by
  an earlier source (so ten chunks of the same page do not count ten times); the ideal ranking
  covers min(k, number of evidence items) items at the top. Always within [0, 1].

Answers (offline, no LLM). Text is lower-cased, split into word and number tokens
(``1,000`` -> ``1000``), and common function words are dropped.

- ``correctness``: key-fact correctness (:mod:`rag.evaluation.key_facts`): the reference's key
  facts (numbers with units, money, dates, codes, people, roles), or the question's explicit
  ``key_facts``, each found, missing or contradicted in the answer. 1.0 when all are found, at
  most 0.3 when one is missing or contradicted, whatever the word overlap ("25 working days"
  against "10 working days" has a token recall of 0.875). ``correctness_reason`` names the fact.
  A reference without a key fact falls back to token recall, and the reason says so.
- ``token_recall``: share of the reference's content tokens that the answer contains.
- ``token_f1``: SQuAD-style F1 over the same tokens (penalises verbose answers).
- ``cosine``: embedding cosine of answer and reference when an ``embed`` function is given;
  it measures topical similarity and cannot tell "10 days" from "87 days", so it is reported
  next to the token scores, never instead of them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import PurePath
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rag.evaluation.key_facts import STOPWORDS, key_fact_correctness

PASSAGE_RECALL = 0.6


# ---------------------------------------------------------------- retrieval

def _get(source: Any, key: str, default: Any = None) -> Any:
    if isinstance(source, dict):
        return source.get(key, default)
    return getattr(source, key, default)


def _file_key(name: Any) -> str:
    return PurePath(str(name or "")).name.lower()


def source_matches(source: Any, evidence: dict[str, Any]) -> bool:
    """Whether one retrieved source (``Source`` or dict with file/page/page_end/text) covers one evidence item."""
    if "text" in evidence and "file" not in evidence:
        return passage_recall(evidence["text"], _get(source, "text", "") or "") >= PASSAGE_RECALL
    if _file_key(_get(source, "file")) != _file_key(evidence.get("file")):
        return False
    page = evidence.get("page")
    if page is None:
        return True
    start = _get(source, "page")
    if start is None:
        return False
    end = _get(source, "page_end", None) or start
    wanted_end = evidence.get("page_end") or page
    # Any overlap between the source's pages and the evidence pages.
    return int(start) <= int(wanted_end) and int(page) <= int(end)


def _covered(source: Any, evidence: Sequence[dict[str, Any]]) -> set[int]:
    return {i for i, item in enumerate(evidence) if source_matches(source, item)}


def hit_at_k(sources: Sequence[Any], evidence: Sequence[dict[str, Any]], k: int | None = None) -> float | None:
    """1.0 if one of the first ``k`` sources (all when ``k`` is None) matches evidence; None without evidence."""
    if not evidence:
        return None
    ranked = list(sources)[:k] if k else list(sources)
    return 1.0 if any(_covered(s, evidence) for s in ranked) else 0.0


def reciprocal_rank(sources: Sequence[Any], evidence: Sequence[dict[str, Any]]) -> float | None:
    if not evidence:
        return None
    for rank, source in enumerate(sources, start=1):
        if _covered(source, evidence):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(sources: Sequence[Any], evidence: Sequence[dict[str, Any]], k: int = 10) -> float | None:
    if not evidence:
        return None
    seen: set[int] = set()
    dcg = 0.0
    for rank, source in enumerate(list(sources)[:k], start=1):
        new = _covered(source, evidence) - seen
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            seen |= new
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(evidence)) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_scores(sources: Sequence[Any], evidence: Sequence[dict[str, Any]], k: int | None = None) -> dict[str, float | None]:
    """``hit_rate`` (at k, default: all returned sources), ``mrr`` and ``ndcg@10`` of one question."""
    return {"hit_rate": hit_at_k(sources, evidence, k), "mrr": reciprocal_rank(sources, evidence),
            "ndcg": ndcg_at_k(sources, evidence, 10)}


def cutoff_scores(sources: Sequence[Any], evidence: Sequence[dict[str, Any]],
                  at: Sequence[int]) -> dict[str, float | None]:
    """``hit_rate@k`` and ``ndcg@k`` for each cut-off k, over the sources in the order given.

    A version that returned fewer than k sources is scored on what it returned: the question is
    whether the evidence was among the first k contexts the LLM saw.
    """
    out: dict[str, float | None] = {}
    for k in at:
        out[f"hit_rate@{k}"] = hit_at_k(sources, evidence, k)
        out[f"ndcg@{k}"] = ndcg_at_k(sources, evidence, k)
    return out


def mean_or_none(values: Iterable[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(kept)) if kept else None


# ---------------------------------------------------------------- answers

def tokens(text: str) -> list[str]:
    """Lower-cased content tokens: words and numbers, function words dropped."""
    text = (text or "").lower().replace("\u2019", "'")
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers are not content
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    found = re.findall(r"\d+(?:\.\d+)?|[a-z]+", text)
    return [t for t in found if t not in STOPWORDS]


def passage_recall(passage: str, text: str) -> float:
    wanted = set(tokens(passage))
    if not wanted:
        return 0.0
    return len(wanted & set(tokens(text))) / len(wanted)


def token_recall(answer: str, reference: str) -> float:
    ref = Counter(tokens(reference))
    if not ref:
        return 0.0
    got = Counter(tokens(answer))
    return sum((ref & got).values()) / sum(ref.values())


def token_f1(answer: str, reference: str) -> float:
    ref, got = Counter(tokens(reference)), Counter(tokens(answer))
    common = sum((ref & got).values())
    if not common:
        return 0.0
    precision = common / sum(got.values())
    recall = common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def answer_correctness(answer: str, reference: str | None, embed: Callable[[list[str]], np.ndarray] | None = None,
                       key_facts: Sequence[str] | None = None, question: str | None = None) -> dict[str, Any]:
    """An answer against a reference answer and/or the question's explicit key facts.

    ``correctness``: key-fact correctness (:mod:`rag.evaluation.key_facts`; token recall when the
    reference has no key fact), ``correctness_reason`` (one line: the fact missing or contradicted),
    ``token_recall``, ``token_f1`` and ``answer_cosine``. ``question``, when given, leaves out the
    facts it already states and says which kind of fact it asks for. All None without a reference
    or key facts; the token scores and cosine are None without a reference.
    """
    if not reference and not key_facts:
        return {"correctness": None, "correctness_reason": None, "token_recall": None, "token_f1": None,
                "answer_cosine": None}
    answer = answer or ""
    recall = token_recall(answer, reference) if reference else None
    facts = key_fact_correctness(answer, reference, key_facts=key_facts, question=question, fallback=recall)
    cosine = None
    if embed is not None and reference and answer.strip():
        vectors = np.asarray(embed([answer, reference]))
        cosine = float(np.clip(vectors[0] @ vectors[1], -1.0, 1.0))
    return {"correctness": facts.score, "correctness_reason": facts.reason, "token_recall": recall,
            "token_f1": token_f1(answer, reference) if reference else None, "answer_cosine": cosine}
