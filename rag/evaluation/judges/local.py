"""``local``: the offline default judge. Which judge that is was chosen by measurement (README, judges table)."""

from typing import Any

from rag.evaluation.judges import Judge

DEFAULT_OFFLINE_JUDGE = "lexical"


def _default() -> Judge:
    from rag.evaluation.judges import JUDGES

    return JUDGES.get(DEFAULT_OFFLINE_JUDGE)


def _make(config: Any, embed: Any) -> Any:
    return _default().make(config, embed)


PLUGIN = Judge(name="local", help=f"the offline default (now: {DEFAULT_OFFLINE_JUDGE})", make=_make,
               label=lambda config: _default().label_for(config), order=0)
