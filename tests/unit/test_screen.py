"""Screening's own logic on canned retrievals: who is dropped, who goes on, and the message."""

from dataclasses import dataclass

import pytest

from rag.errors import InputError
from rag.evaluation.questions import Question
from rag.evaluation.screen import screen
from rag.types import Source

pytestmark = pytest.mark.unit

QUESTIONS = [Question(f"question {i}?", evidence=[{"file": "a.pdf", "page": i}]) for i in range(1, 11)]


@dataclass(frozen=True)
class Spec:
    name: str


class CannedApp:
    """``retriever(spec)``: the right page first for the good versions, for a few questions only for the poor one."""

    def retriever(self, spec):
        def retrieve(question):
            page = int(question.split()[1].rstrip("?"))
            right = Source(file="a.pdf", page=page, page_end=page, score=1.0, text="")
            wrong = Source(file="a.pdf", page=99, page_end=99, score=0.5, text="")
            if spec.name == "poor":
                return [wrong, right] if page <= 2 else [wrong]
            if spec.name == "second":
                return [wrong, right] if page == 1 else [right, wrong]
            return [right, wrong]
        return retrieve


def test_a_version_significantly_worse_than_the_best_is_dropped_the_rest_go_on():
    result = screen(CannedApp(), [Spec("best"), Spec("poor"), Spec("second")], QUESTIONS)
    assert [s.name for s in result.kept] == ["best", "second"]
    assert [s.name for s in result.dropped] == ["poor"]
    by_name = {v.spec.name: v for v in result.versions}
    assert by_name["best"].vs_best is None and by_name["best"].estimate.mean == 1.0
    assert by_name["second"].vs_best.within_noise  # one question of ten slightly worse
    assert by_name["poor"].vs_best.mean < 0 and not by_name["poor"].vs_best.within_noise
    text = str(result)
    assert "10 questions with evidence pages" in text and "dropped poor" in text
    assert "2 of 3 versions go on to answers" in text


def test_all_within_noise_all_go_on():
    result = screen(CannedApp(), [Spec("best"), Spec("second")], QUESTIONS)
    assert len(result.kept) == 2 and "none is significantly worse" in str(result)


def test_questions_without_evidence_cannot_be_screened():
    with pytest.raises(InputError, match="evidence pages"):
        screen(CannedApp(), [Spec("best")], [Question("no evidence?")])
