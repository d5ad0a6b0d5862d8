"""Features, fit and agreement of the probability judge (local LLM P(yes) + lexical, calibrated).

    nice .venv/bin/python bench/calibrate_judge.py [--model qwen2.5-coder-1.5b|PATH.gguf] [--limit N]
        [--datasets DIR] [--only begin,msmarco,...] [--no-compute] [--cache FILE]

For a seeded sample of each dataset it computes the judge's raw features (one LLM forward pass
per claim / passage) and appends them to a JSONL cache (numbers and ids only, no dataset text),
so a rerun or a refit costs nothing. It then fits the logistic weights of
``rag.evaluation.judges.probability`` on the "dev" half of every dataset (split by a hash of the
item id; HotpotQA by question), reports the "held-out" half, refits on everything and prints the
coefficients to paste into the module.

Datasets (metric): BEGIN dev and the hand-made adversarial set (groundedness); MS MARCO, HotpotQA
dev paragraphs (2 supporting vs 2 distractors of the same question) and the hand-made adversarial
set (context relevance); HotpotQA-derived pairs (answer relevance: the supporting sentence that holds
the gold answer vs the answer sentence of another question, or a distractor paragraph's sentence).

Rows per dataset and split: the lexical judge, raw P(yes) at 0.5 (groundedness: weakest claim), and
the calibrated judge (fitted on dev only). items/s is measured on this machine, as the run goes.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import inspect
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.evaluation.judges import probability as pj  # noqa: E402
from rag.evaluation.judges.lexical import sentences  # noqa: E402

METRIC_OF = {"begin": "groundedness", "g_adversarial": "groundedness", "g_tables": "groundedness",
             "msmarco": "context_relevance",
             "hotpot": "context_relevance", "c_adversarial": "context_relevance",
             "hotpot_answers": "answer_relevance"}
DEFAULT_LIMITS = {"begin": 100, "g_adversarial": 0, "g_tables": 0, "msmarco": 50, "hotpot": 56, "c_adversarial": 0,
                  "hotpot_answers": 30}  # 0 = all rows; hotpot counts paragraphs (4 per question)
L2 = 0.05  # on standardised features, per unit of (weighted mean) log loss


def log(message: str) -> None:
    print(f"[calibrate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

@dataclass
class Item:
    dataset: str
    id: str
    group: str  # split unit (the question for HotpotQA)
    args: tuple  # the judge method's arguments
    label: bool
    kind: str = ""

    @property
    def metric(self) -> str:
        return METRIC_OF[self.dataset]


def _digest(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_begin(base: Path) -> list[Item]:
    csv.field_size_limit(sys.maxsize)
    with open(base / "judges" / "begin_dev_wow.tsv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["begin_label"] != "Generic"]
    out = []
    for i, r in enumerate(rows):
        key = f"begin-{i}"
        out.append(Item("begin", key, key, ([r["knowledge"]], r["response"]), r["begin_label"] == "Fully attributable"))
    return out


def load_msmarco(base: Path) -> list[Item]:
    with open(base / "judges" / "ms_marco_context_relevance.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [Item("msmarco", f"msmarco-{i}", f"msmarco-{i}", (r["query"], r["expected_response"]),
                 float(r["expected_score"]) >= 0.5) for i, r in enumerate(rows)]


def _hotpot(base: Path) -> list[dict]:
    with open(base / "hotpotqa" / "dev_questions.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_hotpot(base: Path, seed: int) -> list[Item]:
    """Per question: its 2 supporting paragraphs and 2 random distractors (same question)."""
    out = []
    for q in _hotpot(base):
        rng = random.Random(f"{seed}-{q['question_id']}")
        support = [c for c in q["contexts"] if c["is_supporting"]]
        others = [c for c in q["contexts"] if not c["is_supporting"]]
        for c in support[:2] + rng.sample(others, min(2, len(others))):
            text = f"{c['title']}: {c['paragraph_text']}"  # a retrieved chunk carries its title
            out.append(Item("hotpot", f"hotpot-{q['question_id']}-{c['id']}", f"hotpot-{q['question_id']}",
                            (q["question_text"], text), bool(c["is_supporting"])))
    return out


def load_hotpot_answers(base: Path, seed: int) -> list[Item]:
    """Answer relevance, derived: a sentence holding the gold answer (1) vs another question's (0)
    or a distractor paragraph's first sentence (0)."""
    answered = []
    for q in _hotpot(base):
        spans = [s for a in q["answers_objects"] for s in a["spans"] if s and s.lower() not in ("yes", "no")]
        hit = next((s for c in q["contexts"] if c["is_supporting"] for s in sentences(c["paragraph_text"])
                    if any(span.lower() in s.lower() for span in spans) and len(s.split()) >= 5), None)
        distractor = next((sentences(c["paragraph_text"])[0] for c in q["contexts"]
                           if not c["is_supporting"] and sentences(c["paragraph_text"])), None)
        if hit and distractor:
            answered.append((q, hit, distractor))
    rng = random.Random(seed)
    out = []
    for i, (q, hit, distractor) in enumerate(answered):
        group = f"answers-{q['question_id']}"
        kind = ("answer", "other_question", "distractor")[i % 3]  # one item per question, kinds in turn
        if kind == "answer":
            out.append(Item("hotpot_answers", group + "-a", group, (q["question_text"], hit), True, kind))
        elif kind == "other_question":
            other = answered[rng.randrange(len(answered))]
            if other[0] is not q:
                out.append(Item("hotpot_answers", group + "-o", group, (q["question_text"], other[1]), False, kind))
        else:
            out.append(Item("hotpot_answers", group + "-d", group, (q["question_text"], distractor), False, kind))
    return out


def load_adversarial(path: Path, dataset: str) -> list[Item]:
    if not path.is_file():
        log(f"{path} not found: {dataset} skipped")
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if METRIC_OF[dataset] == "groundedness":
            contexts = r.get("contexts") or [r["context"]]
            args = (contexts, r["answer"])
        else:
            args = (r["question"], r["context"])
        out.append(Item(dataset, r["id"], r["id"], args, bool(r["label"]), r.get("kind", "")))
    return out


def load_all(base: Path, seed: int) -> dict[str, list[Item]]:
    sets = ROOT / "bench" / "judge_sets"
    return {
        "begin": load_begin(base),
        "g_adversarial": load_adversarial(sets / "groundedness_adversarial.jsonl", "g_adversarial"),
        "g_tables": load_adversarial(sets / "groundedness_tables.jsonl", "g_tables"),
        "msmarco": load_msmarco(base),
        "hotpot": load_hotpot(base, seed),
        "c_adversarial": load_adversarial(sets / "context_relevance_adversarial.jsonl", "c_adversarial"),
        "hotpot_answers": load_hotpot_answers(base, seed),
    }


def sample(items: list[Item], limit: int, seed: int) -> list[Item]:
    """A seeded sample of ``limit`` items (all if 0), whole groups only, balanced-ish by label."""
    if not limit or limit >= len(items):
        return items
    groups: dict[str, list[Item]] = {}
    for it in items:
        groups.setdefault(it.group, []).append(it)
    keys = sorted(groups, key=lambda g: _digest(seed, g))
    if all(len(groups[k]) == 1 for k in keys):  # single items: take equal numbers of each label
        pos = [k for k in keys if groups[k][0].label][: (limit + 1) // 2]
        neg = [k for k in keys if not groups[k][0].label][: limit - len(pos)]
        keys = sorted(pos + neg, key=lambda g: _digest(seed, g))
    out: list[Item] = []
    for k in keys:
        if len(out) >= limit:
            break
        out.extend(groups[k])
    return out


def split_of(item: Item) -> str:
    return "dev" if int(_digest("split", item.group), 16) % 2 == 0 else "held-out"


# ---------------------------------------------------------------- features

@dataclass
class Row:
    item: Item
    features: dict
    seconds: float
    lexical_score: float
    lexical_seconds: float
    stats: dict = field(default_factory=dict)


def feature_key(model_name: str, item: Item) -> str:
    # Groundedness asks the LLM about each claim's evidence, so a change of the evidence code changes P(yes) too.
    code = _evidence_version() if item.metric == "groundedness" else ""
    return _digest(model_name, pj.PROMPT_VERSION, item.metric, item.args, code)


# The measures without the LLM are cached too, keyed by the source of the code that computes them,
# so a change there recomputes them (about a minute) while the LLM's P(yes) stays cached.
@functools.lru_cache(maxsize=None)  # the files are read once per run, not once per item
def _evidence_version() -> str:
    code = [(ROOT / "rag" / "evaluation" / name).read_text(encoding="utf-8")
            for name in ("evidence.py", "judges/lexical.py")]
    code.append(inspect.getsource(pj.ProbabilityJudge.claim_evidence))
    code.append(inspect.getsource(pj.split_claims))  # which sentences are claims
    return hashlib.sha1("".join(code).encode()).hexdigest()[:12]


def evidence(item: Item, cheap, cache: dict, out) -> dict:
    """The LLM-free measures of claim_evidence() for the item (cached by code version)."""
    key = _digest("evidence", _evidence_version(), item.args)
    if key not in cache:
        contexts, answer = item.args
        f = cheap.claim_evidence(contexts, answer)
        numeric = {k: v for k, v in f.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        cache[key] = {"key": key, "evidence": numeric}
        out.write(json.dumps(cache[key]) + "\n")
    return cache[key]["evidence"]


def compute(items: list[Item], judge, model_name: str, cache: dict, cache_file: Path, no_compute: bool,
            cheap=None) -> list[Row]:
    rows, todo = [], 0
    with cache_file.open("a", encoding="utf-8") as out:
        for n, item in enumerate(items, 1):
            key = feature_key(model_name, item)
            entry = cache.get(key)
            if entry is None:
                if no_compute or judge is None:
                    continue
                entry = measure(judge, item)
                entry["key"] = key
                entry["dataset"], entry["id"] = item.dataset, item.id
                out.write(json.dumps(entry) + "\n")
                out.flush()
                cache[key] = entry
                todo += 1
                if todo % 10 == 0:
                    log(f"{item.dataset}: {n}/{len(items)} ({entry['seconds']:.1f}s last)")
            features = dict(entry["features"])
            if item.metric == "groundedness":
                verdict = pj.ProbabilityJudge.verdict_without_model(*item.args)  # the rules may have changed
                if verdict is not None:
                    features = {"score": verdict["score"]}
                elif "score" in features:  # decided before, needs the model now
                    if no_compute or judge is None:
                        continue
                    entry = {**measure(judge, item), "key": key, "dataset": item.dataset, "id": item.id}
                    out.write(json.dumps(entry) + "\n")
                    cache[key] = entry
                    features = dict(entry["features"])
            if item.metric == "groundedness" and "score" not in features and cheap is not None:
                features.update(evidence(item, cheap, cache, out))
            lexical = getattr(cheap.lexical if cheap is not None else judge.lexical, item.metric)
            t = time.perf_counter()  # fresh: the lexical judge may have changed since the cache was written
            lexical_score = float(lexical(*item.args)[0])
            lexical_seconds = time.perf_counter() - t
            rows.append(Row(item, features, entry["seconds"], lexical_score, lexical_seconds, entry.get("stats", {})))
    return rows


def measure(judge, item: Item) -> dict:
    lexical_method = getattr(judge.lexical, item.metric)
    t = time.perf_counter()
    lexical_score, _ = lexical_method(*item.args)
    lexical_seconds = time.perf_counter() - t

    features_method = getattr(judge, f"{item.metric}_features")
    before = dict(judge.stats)
    t = time.perf_counter()
    features = features_method(*item.args)
    seconds = time.perf_counter() - t
    stats = {k: judge.stats[k] - before.get(k, 0) for k in judge.stats}
    # keep numbers only: no dataset text in the cache
    numeric = {k: v for k, v in features.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "claim_p" in features:
        numeric["claim_p"] = features["claim_p"]
    return {"features": numeric, "seconds": seconds, "lexical_score": float(lexical_score),
            "lexical_seconds": lexical_seconds, "stats": stats}


def load_cache(path: Path) -> dict:
    cache = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by an interrupted run
                continue
            cache[entry["key"]] = entry
    return cache


# ---------------------------------------------------------------- fit

# The sign each weight must have: evidence of support can only raise the score, evidence against it
# only lower it (so the score is monotonic in P(yes), and a quirk of one dev set cannot flip a sign).
SIGNS = {"min_logit": 1, "mean_logit": 1, "logit": 1, "lexical_logit": 1, "cosine": 1, "coverage": 1,
         "number_mismatch": -1, "names_absent": -1, "negation_differs": -1,
         "clean_support": 1}


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, signs: list[int], l2: float = L2,
                 iters: int = 4000) -> tuple[float, np.ndarray]:
    """Weighted, L2-regularised logistic regression on standardised features (projected gradient
    descent, numpy only; ``signs`` +1 / -1 / 0 bound each weight), as (bias, weights) on the raw scale."""
    mu, sd = x.mean(0), x.std(0)
    sd[sd < 1e-9] = 1.0
    z = (x - mu) / sd
    w = w / w.sum()
    beta, b = np.zeros(x.shape[1]), 0.0
    signs = np.array(signs)
    lr = 1.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ beta + b)))
        g = w * (p - y)
        grad_beta = z.T @ g + l2 * beta
        grad_b = g.sum()
        beta -= lr * grad_beta
        b -= lr * grad_b
        beta[signs > 0] = np.maximum(beta[signs > 0], 0.0)
        beta[signs < 0] = np.minimum(beta[signs < 0], 0.0)
    weights = beta / sd
    bias = b - float((beta * mu / sd).sum())
    return bias, weights


def design(rows: list[Row], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = pj.FEATURES[metric]
    modelled = [r for r in rows if "score" not in r.features]
    x = np.array([[float(r.features[n]) for n in names] for r in modelled], dtype=float)
    y = np.array([r.item.label for r in modelled], dtype=float)
    # Equal weight per dataset, and per class within a dataset: 0.5 becomes the balanced boundary.
    weights = np.zeros(len(modelled))
    for ds in {r.item.dataset for r in modelled}:
        for label in (True, False):
            idx = [i for i, r in enumerate(modelled) if r.item.dataset == ds and r.item.label == label]
            if idx:
                weights[idx] = 1.0 / len(idx)
    return x, y, weights


def fit(rows: list[Row], metric: str) -> dict | None:
    x, y, w = design(rows, metric)
    if len(y) < 4 or len(set(y)) < 2:
        return None
    bias, weights = fit_logistic(x, y, w, [SIGNS.get(name, 0) for name in pj.FEATURES[metric]])
    return {"bias": round(float(bias), 3), "weights": tuple(round(float(v), 3) for v in weights)}


# ---------------------------------------------------------------- scores and metrics

def combined_score(row: Row, coefficients: dict) -> float:
    if "score" in row.features:
        return float(row.features["score"])
    judge = pj.ProbabilityJudge.__new__(pj.ProbabilityJudge)
    judge.coefficients = {row.item.metric: coefficients}
    score = judge.combine(row.item.metric, row.features)
    if row.features.get("contradicted_n"):  # the judge's rule: a contradicted number or cell caps it
        score = min(score, pj.CONTRADICTED_CAP)
    return score


def raw_p(row: Row) -> float:
    f = row.features
    if "score" in f:
        return float(f["score"])
    return float(min(f["claim_p"])) if "claim_p" in f else float(f["p"])


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    neg = np.sort(scores[~labels])
    below = np.searchsorted(neg, scores[labels], side="left")
    ties = np.searchsorted(neg, scores[labels], side="right") - below
    return float((below + 0.5 * ties).sum() / (labels.sum() * (~labels).sum()))


def agreement(scores: list[float], labels: list[bool], seconds: float) -> dict | None:
    s, y = np.array(scores, dtype=float), np.array(labels, dtype=bool)
    if y.all() or not y.any():
        return None
    pred = s >= 0.5
    tp = float((pred & y).sum())
    return {"n": len(y), "AUC": auc(s, y), "bAcc": float((pred[y].mean() + (~pred[~y]).mean()) / 2),
            "F1": 2 * tp / (pred.sum() + y.sum()) if tp else 0.0,
            "items/s": len(y) / seconds if seconds > 0 else float("inf")}


def table(rows: list[dict]) -> str:
    cols = ["split", "judge", "n", "AUC", "bAcc", "F1", "items/s"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) and c != "items/s"
                                     else (f"{r[c]:.2f}" if c == "items/s" else str(r[c])) for c in cols) + " |")
    return "\n".join(out)


def report(dataset: str, rows: list[Row], dev_fit: dict) -> str:
    lines = []
    for split in ("dev", "held-out", "all"):
        part = [r for r in rows if split == "all" or split_of(r.item) == split]
        if not part:
            continue
        labels = [r.item.label for r in part]
        llm_seconds = sum(r.seconds for r in part)
        lex_seconds = sum(r.lexical_seconds for r in part)
        for name, scores, secs in (
            ("lexical (LocalJudge)", [r.lexical_score for r in part], lex_seconds),
            ("raw P(yes)", [raw_p(r) for r in part], llm_seconds),
            ("calibrated (fit on dev)", [combined_score(r, dev_fit) for r in part], llm_seconds + lex_seconds),
        ):
            a = agreement(scores, labels, secs)
            if a:
                lines.append({"split": split, "judge": name, **a})
    return f"### {dataset} ({METRIC_OF[dataset]})\n\n" + table(lines)


def by_kind(rows: list[Row], coefficients: dict) -> str:
    kinds: dict[str, list[Row]] = {}
    for r in rows:
        kinds.setdefault(r.item.kind, []).append(r)
    out = ["| kind | label | n | lexical correct | raw P(yes) correct | calibrated correct |", "|---|---|---|---|---|---|"]
    for kind, part in sorted(kinds.items()):
        label = part[0].item.label
        def correct(scores):
            return sum((s >= 0.5) == r.item.label for s, r in zip(scores, part))
        out.append(f"| {kind} | {int(label)} | {len(part)} | {correct([r.lexical_score for r in part])} | "
                   f"{correct([raw_p(r) for r in part])} | {correct([combined_score(r, coefficients) for r in part])} |")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=pj.DEFAULT_MODEL, help="catalogue name or GGUF path")
    parser.add_argument("--limit", type=int, default=None,
                        help="items per dataset (default: per-dataset sizes that fit ~25 CPU minutes; 0 = all)")
    parser.add_argument("--datasets", default=os.environ.get("RAG_DATASETS") or str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--only", default="", help="comma-separated datasets: " + ",".join(METRIC_OF))
    parser.add_argument("--cache", default=str(ROOT / "bench" / ".cache" / "judge_features.jsonl"))
    parser.add_argument("--no-compute", action="store_true", help="fit and report from the cache only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    base = Path(args.datasets)
    data = load_all(base, args.seed)
    wanted = [d for d in (args.only.split(",") if args.only else METRIC_OF) if d]
    data = {d: sample(data[d], DEFAULT_LIMITS[d] if args.limit is None else args.limit, args.seed)
            for d in wanted if data.get(d)}

    cache_file = Path(args.cache)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache = load_cache(cache_file)
    model_name = Path(args.model).name
    judge = None
    missing = sum(feature_key(model_name, it) not in cache for items in data.values() for it in items)
    if missing and not args.no_compute:
        judge = make_judge(args.model, args.threads)
        log(f"{missing} items to compute with {model_name} ({sum(map(len, data.values()))} in the sample)")
    cheap = judge or pj.ProbabilityJudge(None, embedder())  # the LLM-free measures only
    rows = {d: compute(items, judge, model_name, cache, cache_file, args.no_compute, cheap)
            for d, items in data.items()}

    print(f"Model {model_name}, prompts {pj.PROMPT_VERSION}, load average {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d')}.\n")
    fits = {}
    for metric in dict.fromkeys(METRIC_OF.values()):
        metric_rows = [r for d, rs in rows.items() if METRIC_OF[d] == metric for r in rs]
        if not metric_rows:
            continue
        dev_fit = fit([r for r in metric_rows if split_of(r.item) == "dev"], metric) or pj.COEFFICIENTS[metric]
        all_fit = fit(metric_rows, metric) or pj.COEFFICIENTS[metric]
        fits[metric] = all_fit
        print(f"## {metric}\n\nfeatures {pj.FEATURES[metric]}\n- fit on dev: {dev_fit}\n- fit on all: {all_fit}"
              f"\n- in the module now: {pj.COEFFICIENTS[metric]}\n")
        for d, rs in rows.items():
            if METRIC_OF[d] == metric and rs:
                print(report(d, rs, dev_fit) + "\n")
                if any(r.item.kind for r in rs):
                    print(f"By kind (all rows, coefficients fitted on dev):\n\n{by_kind(rs, dev_fit)}\n")
        for d, rs in rows.items():
            if METRIC_OF[d] == metric and rs:
                stats = [r.stats for r in rs if r.stats.get("checks")]
                if stats:
                    checks = sum(s["checks"] for s in stats)
                    prompt = sum(s.get("prompt_n", 0) for s in stats)
                    cached = sum(s.get("cache_n", 0) for s in stats)
                    secs = sum(r.seconds for r in rs if r.stats.get("checks"))
                    print(f"- {d}: {checks} checks over {len(stats)} items, {secs / checks:.2f} s per check; "
                          f"prompt tokens computed {prompt}, reused from the KV cache {cached}")
        print()
    print("Coefficients fitted on all rows (paste into COEFFICIENTS):\n")
    print(json.dumps(fits, indent=1))


def embedder():
    from rag.config import Config
    from rag.embedding import judge_embedder

    return judge_embedder(Config())


def make_judge(model: str, threads: int):
    from rag.config import Config
    from rag.embedding import judge_embedder
    from rag.generation.llamacpp_engine import get_engine

    config = Config()
    path = pj.resolve_model(model, Path(config.model_cache_dir), fetch=False)
    engine = get_engine(path, threads=threads, context_window=pj.CONTEXT_WINDOW)
    return pj.ProbabilityJudge(engine, judge_embedder(config))


if __name__ == "__main__":
    main()
