"""``local-llm``: TruLens' chain-of-thought LLM judges (the course's) run by the local GGUF model.

Slow (one generated explanation per check: tens of seconds each on 2 CPU cores) and, with a 1.5B
model, poorly calibrated; kept for comparison with the course's setup. See the README's judge table.
"""

from pathlib import Path
from typing import Any

from rag.evaluation.judges import Judge


def _make(config: Any, embed: Any) -> Any:
    from rag.evaluation.trulens.local_llm_provider import LocalLLMProvider
    from rag.evaluation.trulens.providers import ProviderJudge
    from rag.generation.catalogue import resolve_gguf
    from rag.generation.llamacpp_engine import engine_for

    path = resolve_gguf(config.local_judge_model, Path(config.model_cache_dir), fetch=True, progress=True)
    engine = engine_for(config, path)
    return ProviderJudge(LocalLLMProvider(engine, config.local_judge_model))


PLUGIN = Judge(name="local-llm", help="TruLens' CoT judges on the local model (slow)", make=_make,
               label=lambda config: f"local-llm:{config.local_judge_model}", order=4)
