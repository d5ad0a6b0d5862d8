"""``rag models list|pull``: the bundled embedders, the generator catalogue and the rerankers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.config import Config


def list_models(config: Config) -> list[dict[str, Any]]:
    """One row per model: name, role, description, size, licence, status, path."""
    from rag.embedding import EMBEDDERS
    from rag.errors import ModelUnavailableError
    from rag.generation.catalogue import status
    from rag.retrieval import RERANKERS

    rows = []
    for embedder in EMBEDDERS:
        try:
            path, ready = embedder.model_path(), "ready (PyPI package)"
        except ModelUnavailableError as exc:
            path, ready = "-", f"missing: {exc}"
        rows.append({"name": embedder.name, "role": "embedding", "description": embedder.description,
                     "size_mb": None, "licence": "", "status": ready, "path": path})
    for entry in status(Path(config.model_cache_dir)):
        rows.append({"name": entry["name"], "role": "generator", "description": entry["description"],
                     "size_mb": entry["size_mb"], "licence": entry["licence"],
                     "status": "ready" if entry["ready"] else f"not pulled: rag models pull {entry['name']}",
                     "path": entry["path"] if entry["ready"] else "-"})
    for reranker in RERANKERS:
        rows.append({"name": reranker.name, "role": "reranker", "description": reranker.help, "size_mb": None,
                     "licence": "", "status": "ready", "path": "-"})
    return rows


def pull_models(config: Config, names: list[str] | None = None, progress: bool = True) -> list[str]:
    """Ready the named models (default: the configured embedders and local generator); returns the paths.

    Generators are fetched and verified; embedders are prepared (minilm-int8 is exported to ONNX).
    """
    from rag.embedding import EMBEDDERS, prepare
    from rag.generation import GENERATORS, model_name
    from rag.generation.catalogue import CATALOGUE, resolve_gguf

    cache = Path(config.model_cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    if names is None:
        embedders = list(dict.fromkeys([config.embed_model, config.judge_embed_model]))
        wanted = [model_name(config)] if GENERATORS.get(config.llm_provider).local_weights else []
    else:
        embedders = [name for name in names if name in EMBEDDERS]
        wanted = [name for name in names if name not in EMBEDDERS]
    paths = [prepare(config, name) for name in embedders]
    for name in wanted:
        if name not in CATALOGUE and not Path(name).suffix == ".gguf" and not name.startswith("hf:"):
            from rag.errors import ConfigError

            raise ConfigError(f"Unknown model {name!r}: choose one of {', '.join(CATALOGUE)} "
                              "(`rag models list`), or give a .gguf path.")
        paths.append(str(resolve_gguf(name, cache, fetch=True, progress=progress)))
    return paths
