"""Does a linear probe on the judge model's hidden state judge groundedness better than its P(yes)?

    .venv/bin/pip install gguf      # reads the model's output rows for "yes" / "no" (this script only)
    nice .venv/bin/python bench/judge_probe.py [--threads 2] [--model qwen2.5-coder-1.5b|PATH.gguf]

Issue 20 names this route for the groundedness targets. For every claim check that the probability
judge makes on the calibration sets of ``bench/calibrate_judge.py`` (BEGIN, our adversarial and table
sets; the same seeded sample and the same dev / held-out split by item id), llama.cpp reads the very
prompt the judge sends and returns the last token's final hidden state (``pooling=last``, not
normalised): the state from which the model says "yes" or "no". From it this script computes

- P(yes) as the judge reads it, from the output head's rows of the yes / no tokens (checked against
  the judge's own logprobs call on the first claims), and
- a probe: an L2-regularised logistic regression on the standardised hidden state, fitted on the dev
  half only (claims of grounded answers as yes; of an ungrounded answer, its weakest claim by P(yes)
  as no), its strength chosen by 5-fold cross-validation within dev;

and reports held-out AUC / balanced accuracy per set for: raw P(yes) (weakest claim), the judge's
calibrated combination (refitted on dev), the probe alone (weakest claim), and the combination with the
probe's logit in place of P(yes)'s (the probe cross-fitted on dev, so the combination is not fitted on
the probe's own training claims). Hidden states are cached in ``bench/.cache/judge_probe.pkl``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import calibrate_judge as cj  # noqa: E402  (the sets, the split and the logistic fit)

pj = cj.pj
SETS = {"begin": 100, "g_adversarial": 0, "g_tables": 0}
L2_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def hidden_state_server(path: Path, threads: int):
    """A llama.cpp instance that returns the last token's final hidden state (after the output norm)."""
    import tempfile

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = pj.CONTEXT_WINDOW
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.embedding = True
    params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_LAST
    params.embd_normalize = -1  # the raw state: the output head's logits are linear in it
    params.verbosity = -1
    params.hostnames = [os.path.join(tempfile.mkdtemp(prefix="rag-probe-"), "server.sock")]
    return xllamacpp.Server(params)


def hidden_state(server, prompt: str) -> np.ndarray:
    reply = server.handle_embeddings({"input": [prompt]})
    return np.asarray(reply["data"][0]["embedding"], dtype=np.float32)


def yes_no_heads(path: Path, engine) -> tuple[np.ndarray, np.ndarray]:
    """Output-head rows of the single tokens that the judge counts as yes and as no."""
    import gguf

    def single_tokens(words: frozenset) -> set[int]:
        ids = set()
        for w in words:
            for form in {w, w.capitalize(), w.upper(), " " + w, " " + w.capitalize()}:
                tokens = engine.tokenize(form)
                if len(tokens) == 1:
                    ids.add(tokens[0])
        return ids

    yes, no = sorted(single_tokens(pj.YES)), sorted(single_tokens(pj.NO))
    reader = gguf.GGUFReader(str(path))
    head = next(t for t in reader.tensors if t.name == "output.weight")
    rows = np.asarray(head.data)
    out = [gguf.quants.dequantize(rows[ids], head.tensor_type).astype(np.float32) for ids in (yes, no)]
    return out[0], out[1]


def logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def head_logit(h: np.ndarray, yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    """logit of P(yes) / (P(yes) + P(no)) from hidden states ``h`` (n x d)."""
    return np.clip(logsumexp(h @ yes.T) - logsumexp(h @ no.T), -pj.LOGIT_CLIP, pj.LOGIT_CLIP)


def claim_states(judge, server, contexts: list[str], answer: str, question: str | None = None) -> dict:
    """The LLM-free features of the answer's groundedness and the hidden state of each claim's check."""
    features = judge.claim_evidence(contexts, answer, question)
    states = []
    for user in judge.claim_prompts(features):
        prompt = judge.engine.render([{"role": "system", "content": pj.SYSTEM}, {"role": "user", "content": user}])
        states.append(hidden_state(server, prompt))
    numeric = {k: v for k, v in features.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"features": numeric, "states": np.stack(states)}


def collect(items, judge, server, cache: dict, cache_path: Path) -> list[dict]:
    """Per item: its label, split, the LLM-free features, and the hidden state of each claim's check."""
    out, fresh = [], 0
    for n, item in enumerate(items, 1):
        contexts, answer = item.args
        if pj.ProbabilityJudge.verdict_without_model(contexts, answer) is not None:
            continue  # decided by rule, the same for every judge variant
        key = cj.feature_key("probe", item)
        if key not in cache:
            cache[key] = claim_states(judge, server, contexts, answer)
            fresh += 1
            if fresh % 10 == 0:
                cj.log(f"{item.dataset}: {n}/{len(items)}")
                cache_path.write_bytes(pickle.dumps(cache))
        out.append({"item": item, "split": cj.split_of(item), **cache[key]})
    cache_path.write_bytes(pickle.dumps(cache))
    return out


def train_probe(rows: list[dict], l2: float, yes: np.ndarray, no: np.ndarray):
    """The probe fitted on ``rows``' claims: a function from hidden states to logits."""
    x, y, w = [], [], []
    groups = {}
    for r in rows:
        logits = head_logit(r["states"], yes, no)
        chosen = range(len(logits)) if r["item"].label else [int(np.argmin(logits))]
        for i in chosen:
            x.append(r["states"][i])
            y.append(float(r["item"].label))
            groups.setdefault((r["item"].dataset, r["item"].label), []).append(len(w))
            w.append(1.0 / len(chosen))
    x, y, w = np.array(x), np.array(y), np.array(w)
    for idx in groups.values():  # each (set, label) weighs the same: 0.5 is the balanced boundary
        w[idx] = w[idx] / w[idx].sum()
    bias, weights = cj.fit_logistic(x, y, w, [0] * x.shape[1], l2=l2, iters=3000)
    return lambda states: np.clip(states @ weights + bias, -pj.LOGIT_CLIP, pj.LOGIT_CLIP)


def folds(rows: list[dict], k: int = 5) -> list[list[dict]]:
    ordered = sorted(rows, key=lambda r: hashlib.sha1(r["item"].id.encode()).hexdigest())
    return [ordered[i::k] for i in range(k)]


def item_auc(rows: list[dict], scores: list[float]) -> float:
    labels = np.array([r["item"].label for r in rows], dtype=bool)
    return cj.auc(np.array(scores), labels)


def cross_fitted(rows: list[dict], l2: float, yes, no) -> dict[int, np.ndarray]:
    """Each row's claim logits from a probe fitted on the other folds (by ``id`` of the row)."""
    out = {}
    for fold in folds(rows):
        held = {id(r) for r in fold}
        probe = train_probe([r for r in rows if id(r) not in held], l2, yes, no)
        out.update({id(r): probe(r["states"]) for r in fold})
    return out


def choose_l2(dev: list[dict], yes, no) -> float:
    best, best_auc = L2_GRID[0], -1.0
    for l2 in L2_GRID:
        cross = cross_fitted(dev, l2, yes, no)
        a = np.mean([item_auc(part, [float(cross[id(r)].min()) for r in part])
                     for part in ([r for r in dev if r["item"].dataset == d]
                                  for d in {r["item"].dataset for r in dev})])
        cj.log(f"l2 {l2}: cross-validated dev AUC {a:.3f}")
        if a > best_auc:
            best, best_auc = l2, a
    return best


def as_row(r: dict, logits: np.ndarray) -> cj.Row:
    """A calibrate_judge Row whose claim logits are ``logits`` (P(yes)'s or the probe's)."""
    features = {**r["features"], "min_logit": float(logits.min()), "mean_logit": float(logits.mean()),
                "claim_p": [float(1 / (1 + np.exp(-v))) for v in logits]}
    return cj.Row(r["item"], features, 0.0, 0.0, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=pj.DEFAULT_MODEL)
    parser.add_argument("--datasets", default=os.environ.get("RAG_DATASETS") or str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(ROOT / "bench" / ".cache" / "judge_probe.pkl"))
    parser.add_argument("--sample", nargs=2, metavar=("RUN_DIR", "LABELS"),
                        help="also score a stored run's answers labelled right / wrong by a person")
    args = parser.parse_args()

    data = cj.load_all(Path(args.datasets), 0)
    items = [it for d, limit in SETS.items() for it in cj.sample(data[d], limit, 0)]
    judge = cj.make_judge(args.model, args.threads)
    from rag.config import Config

    path = pj.resolve_model(args.model, Path(Config().model_cache_dir), fetch=False)
    server = hidden_state_server(path, args.threads)
    yes, no = yes_no_heads(path, judge.engine)
    cache_path = Path(args.cache)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache = pickle.loads(cache_path.read_bytes()) if cache_path.is_file() else {}
    started, cpu = time.perf_counter(), time.process_time()
    rows = collect(items, judge, server, cache, cache_path)
    cj.log(f"{len(rows)} items, {time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU "
           "(this process; llama.cpp's threads included)")

    # The head's P(yes) must be the judge's: check it on the first claims against a logprobs call.
    for r in rows[:3]:
        user = judge.claim_prompts(judge.claim_evidence(*r["item"].args))[0]
        reply = judge.engine.chat([{"role": "system", "content": pj.SYSTEM}, {"role": "user", "content": user}],
                                  max_tokens=1, logprobs=True, top_logprobs=pj.TOP_LOGPROBS)
        mine = 1 / (1 + np.exp(-head_logit(r["states"][:1], yes, no)[0]))
        print(f"check: P(yes) from the hidden state {mine:.3f}, from llama.cpp's logprobs {pj.p_yes(reply):.3f}")

    dev = [r for r in rows if r["split"] == "dev"]
    l2 = choose_l2(dev, yes, no)
    probe = train_probe(dev, l2, yes, no)
    cross = cross_fitted(dev, l2, yes, no)  # dev rows' logits from probes that did not train on them

    head_rows = [as_row(r, head_logit(r["states"], yes, no)) for r in rows]
    probe_rows = [as_row(r, cross[id(r)] if r["split"] == "dev" else probe(r["states"])) for r in rows]
    head_fit = cj.fit([row for row, r in zip(head_rows, rows) if r["split"] == "dev"], "groundedness")
    probe_fit = cj.fit([row for row, r in zip(probe_rows, rows) if r["split"] == "dev"], "groundedness")
    print(f"\nprobe: L2 {l2} (5-fold CV on dev), {len(dev)} dev items, {len(rows) - len(dev)} held-out; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| set | split | n | raw P(yes) AUC / bAcc | calibrated (P(yes)) AUC / bAcc | probe AUC / bAcc | "
          "calibrated (probe) AUC / bAcc |")
    print("|---|---|---|---|---|---|---|")
    for d in SETS:
        for split in ("held-out", "dev"):
            part = [i for i, r in enumerate(rows) if r["item"].dataset == d and r["split"] == split]
            if not part:
                continue
            labels = [rows[i]["item"].label for i in part]
            cells = []
            for scores in ([cj.raw_p(head_rows[i]) for i in part],
                           [cj.combined_score(head_rows[i], head_fit) for i in part],
                           [cj.raw_p(probe_rows[i]) for i in part],
                           [cj.combined_score(probe_rows[i], probe_fit) for i in part]):
                a = cj.agreement(scores, labels, 1.0)
                cells.append(f"{a['AUC']:.3f} / {a['bAcc']:.3f}" if a else "-")
            print(f"| {d} | {split} | {len(part)} | " + " | ".join(cells) + " |")
    if args.sample:
        sample_check(args.sample, rows, l2, judge, server, cache, cache_path, yes, no)


def sample_check(paths: list[str], rows: list[dict], l2: float, judge, server, cache: dict, cache_path: Path,
                 yes: np.ndarray, no: np.ndarray) -> None:
    """Answers of a stored run, labelled right or wrong by a person: what share of the right ones each
    judge scores >= 0.5, of the wrong ones < 0.5, and its AUC, with every fit on all calibration items."""
    from verdict_check import label_of, load_labels, load_rows

    run = Path(paths[0])
    labels = load_labels(Path(paths[1]))
    stored = load_rows(run)["rows"]
    probe = train_probe(rows, l2, yes, no)
    cross = cross_fitted(rows, l2, yes, no)
    head_fit = cj.fit([as_row(r, head_logit(r["states"], yes, no)) for r in rows], "groundedness")
    probe_fit = cj.fit([as_row(r, cross[id(r)]) for r in rows], "groundedness")
    print(f"\nfits on all {len(rows)} calibration items: P(yes) {head_fit}, probe {probe_fit}")
    scores: dict[str, list[float]] = {"stored (the run's judge)": [], "calibrated (P(yes))": [],
                                      "probe alone": [], "calibrated (probe)": []}
    right = []
    for r in stored:
        label = label_of(labels, r)
        if label is None or r.get("groundedness") is None:
            continue
        right.append(label)
        scores["stored (the run's judge)"].append(float(r["groundedness"]))
        rule = pj.ProbabilityJudge.verdict_without_model(r["contexts"], r["answer"])
        if rule is not None:
            for name in list(scores)[1:]:
                scores[name].append(rule["score"])
            continue
        key = cj._digest("sample", cj._evidence_version(), pj.PROMPT_VERSION, r["contexts"], r["answer"], r["question"])
        if key not in cache:
            cache[key] = claim_states(judge, server, r["contexts"], r["answer"], r["question"])
            cache_path.write_bytes(pickle.dumps(cache))
        entry = {"item": cj.Item("g_tables", key, key, (), label), **cache[key]}  # any groundedness set
        scores["calibrated (P(yes))"].append(cj.combined_score(as_row(entry, head_logit(entry["states"], yes, no)),
                                                               head_fit))
        scores["probe alone"].append(cj.raw_p(as_row(entry, probe(entry["states"]))))
        scores["calibrated (probe)"].append(cj.combined_score(as_row(entry, probe(entry["states"])), probe_fit))
    y = np.array(right, dtype=bool)
    print(f"\n{len(y)} labelled answers of {run}: {int(y.sum())} right, {int((~y).sum())} wrong\n")
    print("| groundedness judge | right >= 0.5 | wrong < 0.5 | AUC |")
    print("|---|---|---|---|")
    for name, values in scores.items():
        v = np.array(values)
        print(f"| {name} | {int((v[y] >= 0.5).sum())}/{int(y.sum())} | {int((v[~y] < 0.5).sum())}/{int((~y).sum())} | "
              f"{cj.auc(v, y):.3f} |")


if __name__ == "__main__":
    main()
