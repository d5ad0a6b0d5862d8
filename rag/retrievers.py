"""Stage 4: the registry of retriever kinds and the query engines built from them.

A retriever is named by its kind and parameters, e.g. ``sentence_window:window_size=1,top_k=4``.
Parameters that shape the nodes (chunk and window sizes) select an index; the others
(top-k, rerank, merge ratio) only change how the index is queried.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, List

from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag.config import Config
from rag.errors import ConfigError
from rag.parse import ParserSpec

KINDS = ("basic", "sentence_window", "auto_merging")

# Which parameters each kind takes: (name, config field holding the default).
INDEX_PARAMS = {
    "basic": (("chunk_size", "chunk_size"), ("chunk_overlap", "chunk_overlap")),
    "sentence_window": (("window_size", "window_size"),),
    "auto_merging": (("chunk_sizes", "chunk_sizes"),),
}
QUERY_PARAMS = {
    "basic": (("top_k", "top_k"), ("rerank_top_n", None)),
    "sentence_window": (("top_k", "window_top_k"), ("rerank_top_n", "window_rerank_top_n")),
    "auto_merging": (("top_k", "merge_top_k"), ("rerank_top_n", "merge_rerank_top_n"),
                     ("merge_ratio", "merge_ratio")),
}


@dataclass(frozen=True)
class RetrieverSpec:
    kind: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def parse(cls, spec: "str | RetrieverSpec", config: Config, **overrides: Any) -> "RetrieverSpec":
        """``"kind"`` or ``"kind:key=value,key=value"`` (plus keyword overrides) -> full spec."""
        if isinstance(spec, RetrieverSpec):
            text_params: dict[str, Any] = dict(spec.params)
            kind = spec.kind
        else:
            kind, _, rest = spec.strip().partition(":")
            text_params = {}
            for item in filter(None, (p.strip() for p in _split_params(rest))):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ConfigError(f"Retriever {spec!r}: expected key=value, got {item!r}.")
                text_params[key.strip()] = value.strip()
        if kind not in KINDS:
            raise ConfigError(f"Unknown retriever {kind!r}. Choose one of: {', '.join(KINDS)}.")
        allowed = dict(INDEX_PARAMS[kind] + QUERY_PARAMS[kind])
        params = {name: (getattr(config, field) if field else None) for name, field in allowed.items()}
        for key, value in {**text_params, **{k: v for k, v in overrides.items() if v is not None}}.items():
            if key not in allowed:
                raise ConfigError(f"Retriever {kind} has no parameter {key!r}. It takes: {', '.join(allowed)}.")
            params[key] = _coerce(kind, key, value)
        return cls(kind, tuple(params.items()))

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def parser_spec(self) -> ParserSpec:
        names = {name for name, _ in INDEX_PARAMS[self.kind]}
        return ParserSpec.of(self.kind, {k: v for k, v in self.params if k in names})

    @property
    def name(self) -> str:
        """Human-readable and unique per parameter set: used as the app version in evaluations."""
        shown = ",".join(f"{k}={_show(v)}" for k, v in self.params)
        return f"{self.kind}[{shown}]"

    def __str__(self) -> str:
        return self.name


def _split_params(text: str) -> list[str]:
    # chunk_sizes=2048,512 contains commas: a piece without "=" continues the previous value.
    out: list[str] = []
    for piece in text.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out


def _coerce(kind: str, key: str, value: Any) -> Any:
    try:
        if key == "chunk_sizes":
            items = value.replace("[", "").replace("]", "").split(",") if isinstance(value, str) else value
            sizes = tuple(int(x) for x in items if str(x).strip())
            if not sizes or any(s <= 0 for s in sizes) or list(sizes) != sorted(sizes, reverse=True):
                raise ValueError
            return sizes
        if key == "rerank_top_n" and (value is None or str(value).lower() in ("none", "0", "")):
            return None
        if key == "merge_ratio":
            ratio = float(value)
            if not 0 <= ratio <= 1:
                raise ValueError
            return ratio
        number = int(value)
        if number < (0 if key == "chunk_overlap" else 1):
            raise ValueError
        return number
    except (TypeError, ValueError):
        raise ConfigError(f"Retriever {kind}: invalid value {key}={value!r}.") from None


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return str(value)


class TimedQueryEngine(RetrieverQueryEngine):
    """A RetrieverQueryEngine that records per-stage wall time and token usage in the response."""

    def __init__(self, *args: Any, spec: RetrieverSpec, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.spec = spec
        self._timings = threading.local()

    def retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        start = time.perf_counter()
        nodes = self._retriever.retrieve(query_bundle)
        retrieved = time.perf_counter()
        nodes = self._apply_node_postprocessors(nodes, query_bundle=query_bundle)
        self._timings.value = {"retrieve": retrieved - start, "rerank": time.perf_counter() - retrieved}
        return nodes

    def _query(self, query_bundle: QueryBundle):
        start = time.perf_counter()
        response = super()._query(query_bundle)
        total = time.perf_counter() - start
        timings = dict(getattr(self._timings, "value", {"retrieve": 0.0, "rerank": 0.0}))
        timings["generate"] = max(total - timings["retrieve"] - timings["rerank"], 0.0)
        timings["total"] = total
        response.metadata = dict(response.metadata or {})
        response.metadata["timings"] = timings
        response.metadata["usage"] = getattr(self._response_synthesizer, "last_usage", {})
        return response


def build_retrieval(spec: RetrieverSpec, index: Any, storage: Any, config: Config) -> tuple[Any, list[Any]]:
    """The retriever of a spec and the postprocessors that run after it (window, rerank)."""
    from llama_index.core.postprocessor import MetadataReplacementPostProcessor
    from llama_index.core.retrievers import AutoMergingRetriever

    from rag.models import reranker

    p = spec.values
    retriever = index.as_retriever(similarity_top_k=p["top_k"])
    postprocessors = []
    if spec.kind == "sentence_window":
        postprocessors.append(MetadataReplacementPostProcessor(target_metadata_key="window"))
    elif spec.kind == "auto_merging":
        retriever = AutoMergingRetriever(retriever, storage, simple_ratio_thresh=p["merge_ratio"])
    if p.get("rerank_top_n"):
        rerank = reranker(config, top_n=p["rerank_top_n"])
        if rerank is not None:
            postprocessors.append(rerank)
    return retriever, postprocessors


def retrieve_nodes(retriever: Any, postprocessors: list[Any], question: str) -> List[NodeWithScore]:
    bundle = QueryBundle(question)
    nodes = retriever.retrieve(bundle)
    for postprocessor in postprocessors:
        nodes = postprocessor.postprocess_nodes(nodes, query_bundle=bundle)
    return nodes


def build_query_engine(spec: RetrieverSpec, index: Any, storage: Any, llm: Any, config: Config) -> TimedQueryEngine:
    from rag.synthesize import CitingSynthesizer

    retriever, postprocessors = build_retrieval(spec, index, storage, config)
    synthesizer = CitingSynthesizer(llm=llm, context_window=config.context_window,
                                    max_new_tokens=config.max_new_tokens)
    return TimedQueryEngine(retriever=retriever, response_synthesizer=synthesizer,
                            node_postprocessors=postprocessors, spec=spec)
