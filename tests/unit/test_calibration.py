"""`rag judge calibrate` on synthetic labels: the threshold and weight fits, cross-validation that
never scores a row with a fit that saw it, the file in the storage folder, and the judge using it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.errors import ConfigError, InputError
from rag.evaluation import calibration
from rag.evaluation.judge_file import balanced_accuracy
from rag.evaluation.judges import judge_label
from rag.evaluation.judges.probability import COEFFICIENTS
from rag.evaluation.labels import Label

PRIOR = {"bias": 0.0, "weights": (1.0, 0.0)}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels that follow the second feature, which the prior ignores; the first is noise around it."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    x = np.column_stack([rng.normal(size=n) + 0.3 * truth, truth + 0.3 * rng.normal(size=n)])
    return x, truth > 0.5


def test_threshold_fit_moves_the_decision_into_the_bias():
    x = np.array([[-2.0, 0], [-1.0, 0], [0.5, 0], [1.0, 0], [2.0, 0], [3.0, 0]])
    labels = np.array([0, 0, 0, 0, 1, 1], bool)  # the prior says yes from x > 0: too early here
    fitted = calibration.fit_threshold(x, labels, PRIOR)
    assert fitted["fitted"] == "threshold" and fitted["weights"] == [1.0, 0.0]
    decided = calibration.scores(fitted, x) >= 0.5
    assert decided.tolist() == labels.tolist()  # 0.5 now decides where the best threshold did
    assert 1 / (1 + np.exp(-1.0)) < fitted["threshold"] < 1 / (1 + np.exp(-2.0))


def test_weight_fit_learns_the_signal_the_prior_misses():
    x, labels = synthetic(200)
    fitted = calibration.fit_weights(x, labels, PRIOR)
    assert fitted["weights"][1] > 1.0 and abs(fitted["weights"][0]) < fitted["weights"][1]
    before = balanced_accuracy(calibration.scores(PRIOR, x), labels, 0.5)
    assert balanced_accuracy(calibration.scores(fitted, x), labels, 0.5) > before + 0.15


def test_few_labels_fit_the_threshold_only():
    x, labels = synthetic(30)
    assert calibration.fit(x, labels, PRIOR)["fitted"] == "threshold"
    x, labels = synthetic(calibration.MIN_FOR_WEIGHTS)
    assert calibration.fit(x, labels, PRIOR)["fitted"] == "weights"


def test_cross_validation_never_scores_a_row_with_a_fit_that_saw_it():
    x, labels = synthetic(50)
    seen = []

    def spy(train_x, train_labels, prior):
        seen.append({tuple(r) for r in train_x})
        return calibration.fit_weights(train_x, train_labels, prior)

    calibration.cross_validated_scores(x, labels, PRIOR, fitter=spy)
    fold = calibration.folds(labels)
    assert len(seen) == calibration.FOLDS
    for f, trained in enumerate(seen):
        held = {tuple(r) for r in x[fold == f]}
        assert held and not held & trained and len(trained) == len(x) - len(held)
    # each fold holds both classes (stratified)
    assert all(labels[fold == f].any() and (~labels[fold == f]).any() for f in range(calibration.FOLDS))


def test_held_out_agreement_improves_on_labels_the_prior_misreads():
    x, labels = synthetic(120, seed=3)
    report = calibration.calibrate_metric("groundedness", x, labels, PRIOR)
    before, after = report["held_out"]["before"], report["held_out"]["after"]
    assert report["n"] == 120 and report["fitted"] == "weights"
    assert after["balanced_accuracy"] > before["balanced_accuracy"] + 0.1 and after["kappa"] > before["kappa"]


def test_too_few_labels_are_named():
    assert "need at least 10" in calibration.check_labels("groundedness", np.array([1, 0, 1], bool))
    assert calibration.check_labels("groundedness", np.array([1] * 9 + [0] * 3, bool)) is None
    assert "groundedness" in calibration.check_labels("groundedness", np.array([1] * 20 + [0] * 2, bool))


class FeatureJudge:
    """Stands in for the probability judge: features read off the label's answer."""

    def answer_relevance_features(self, question, answer):
        if answer == "I don't know.":
            return {"score": 0.0, "reason": "declines"}
        logit, cosine = (float(v) for v in answer.split())
        return {"logit": logit, "cosine": cosine}


def test_calibrate_uses_the_labelled_rows_and_leaves_short_metrics_as_shipped():
    x, labels = synthetic(60, seed=5)
    rows = [Label(metric="answer_relevance", value=int(y), question="q?", answer=f"{a:.4f} {b:.4f}")
            for (a, b), y in zip(x, labels)]
    rows.append(Label(metric="answer_relevance", value=0, question="q?", answer="I don't know."))
    rows.append(Label(metric="groundedness", value=1, question="q?", answer="a", contexts=["c"]))
    fitted, skipped = calibration.calibrate(FeatureJudge(), rows, {"answer_relevance": PRIOR},
                                            {"answer_relevance": ("logit", "cosine")})
    assert set(fitted) == {"answer_relevance"} and fitted["answer_relevance"]["n"] == 61
    assert fitted["answer_relevance"]["n_fitted"] == 60  # the abstention has a fixed score: not fitted
    assert any(s.startswith("groundedness: 1 label(s)") for s in skipped)


def test_the_file_is_used_for_its_model_only_and_reset_removes_it(tmp_path):
    fitted = {"groundedness": {"bias": 0.5, "weights": [0.1] * 7, "threshold": 0.5, "fitted": "weights", "n": 50}}
    path = calibration.save(tmp_path, "qwen", fitted)
    document = json.loads(path.read_text())
    assert document["n"] == 50 and document["judge"] == "probability" and document["model"] == "qwen" and document["date"]
    used = calibration.coefficients(tmp_path, "qwen", COEFFICIENTS)
    assert used["groundedness"] == {"bias": 0.5, "weights": (0.1,) * 7}
    assert used["context_relevance"] == COEFFICIENTS["context_relevance"]
    assert calibration.coefficients(tmp_path, "another-model", COEFFICIENTS) is None
    assert calibration.reset(tmp_path) and not path.exists() and not calibration.reset(tmp_path)


def test_a_broken_file_says_how_to_remove_it(tmp_path):
    calibration.path_in(tmp_path).write_text("{not json")
    with pytest.raises(ConfigError, match="rag judge calibrate --reset"):
        calibration.load(tmp_path, "qwen")


def test_a_calibration_renames_the_judge_so_old_cached_scores_are_not_reused(tmp_path):
    config = Config(storage_dir=tmp_path, local_judge_model="qwen2.5-coder-1.5b")
    shipped = judge_label(config, "probability")
    calibration.save(tmp_path, "qwen2.5-coder-1.5b",
                     {"answer_relevance": {"bias": 0.1, "weights": [1.0, 2.0], "threshold": 0.5, "n": 40}})
    assert judge_label(config, "probability").startswith(shipped + "+calibrated:")


def test_rag_calibrate_judge_fits_the_stored_labels_keeps_them_and_resets(tmp_path):
    from rag import RAG

    config = Config(storage_dir=tmp_path / "storage", local_judge_model="qwen2.5-coder-1.5b")
    (tmp_path / "storage").mkdir()
    app = RAG(config, progress=False)
    with pytest.raises(InputError, match="Nothing to calibrate: groundedness: 0 label"):
        app.calibrate_judge(progress=False, judge=FeatureJudge())
    x, labels = synthetic(45, seed=2)
    store = app.labels()
    for (a, b), y in zip(x, labels):
        store.add(Label(metric="answer_relevance", value=int(y), question="q?", answer=f"{a:.4f} {b:.4f}"))
    done = app.calibrate_judge(progress=False, judge=FeatureJudge())
    stored = json.loads(Path(done["path"]).read_text())
    assert stored["metrics"]["answer_relevance"]["fitted"] == "weights" and stored["n"] == 45
    assert app.calibrate_judge(reset=True) == {"path": done["path"], "removed": True}
    assert not Path(done["path"]).exists()


def test_calibration_of_the_real_probability_judge_on_its_own_features(tmp_path):
    """The probability judge (fake engine: P(yes) chosen per passage) measured on 12 context labels:
    P(yes) 0.6 on every passage, but only the passages with "opens" are relevant. The shipped
    coefficients pass them all; the calibrated threshold separates them, and the judge built with
    the stored calibration says so."""
    from test_probability_judge import FakeEngine, fake_embed

    from rag.evaluation.judges.probability import FEATURES, ProbabilityJudge

    judge = ProbabilityJudge(FakeEngine(default=0.6), fake_embed)
    question = "When does the Norfield library open on weekdays?"
    relevant = [f"The Norfield library opens at {h} am on weekdays, says notice {n}." for n, h in enumerate(range(7, 13))]
    other = [f"The Norfield museum holds {n} paintings from the {n}th century." for n in range(6)]
    labels = [Label(metric="context_relevance", value=1, question=question, contexts=[c]) for c in relevant]
    labels += [Label(metric="context_relevance", value=0, question=question, contexts=[c]) for c in other]
    fitted, skipped = calibration.calibrate(judge, labels, COEFFICIENTS, FEATURES)
    report = fitted["context_relevance"]
    assert report["fitted"] == "threshold" and report["n"] == 12 and len(skipped) == 2
    assert report["held_out"]["after"]["balanced_accuracy"] >= report["held_out"]["before"]["balanced_accuracy"]
    calibration.save(tmp_path, "m", fitted)
    calibrated = ProbabilityJudge(FakeEngine(default=0.6), fake_embed,
                                  coefficients=calibration.coefficients(tmp_path, "m", COEFFICIENTS))
    decide = lambda j, c: j.context_relevance(question, c)[0] >= 0.5  # noqa: E731
    assert decide(judge, other[0]) == decide(judge, relevant[0])  # shipped: the same verdict for both
    assert decide(calibrated, relevant[0]) and not decide(calibrated, other[0])
