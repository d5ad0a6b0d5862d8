"""``probability``: the local model's next-token P("yes") per check (one forward pass, no generation),
combined with the lexical and embedding signals and calibrated so 0.5 is a real decision boundary.
Groundedness checks every claim of the answer against the contexts. See rag/evaluation/probability_judge.py."""

from typing import Any

from rag.evaluation.judges import Judge


def _make(config: Any, embed: Any) -> Any:
    from rag.evaluation.probability_judge import ProbabilityJudge

    return ProbabilityJudge.from_config(config, model=config.local_judge_model, embed=embed)


PLUGIN = Judge(name="probability", help="local LLM P(yes) per claim + lexical + embedding, calibrated",
               make=_make, label=lambda config: f"probability:{config.local_judge_model}", order=1)
