"""The query engine of a retriever spec: first-stage retriever, postprocessors, rerank, synthesizer.

Responses carry per-stage wall time (``metadata["timings"]``) and the synthesizer's token usage
and stop reason (``metadata["usage"]``, ``metadata["finish_reason"]``).
"""

from __future__ import annotations

import time
from typing import Any, List

from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag.retrieval import MODES, RERANKERS
from rag.retrieval.mode import IndexParts
from rag.retrieval.rerank import cross_encoder
from rag.retrieval.spec import RetrieverSpec
from rag.types import Source


def make_reranker(config: Any, top_n: int, parts: IndexParts | None = None) -> Any:
    """The postprocessor of ``config.reranker`` keeping ``top_n`` nodes, or None (retrieval order)."""
    name = config.reranker or "none"
    if name in RERANKERS:
        return RERANKERS.get(name).make(config, top_n, parts)
    return cross_encoder(name, top_n)  # any other name is a CrossEncoder model


def build_retrieval(spec: RetrieverSpec, parts: IndexParts, config: Any) -> tuple[Any, list[Any]]:
    """The retriever of a spec and the postprocessors that run after it (window, merge, rerank)."""
    from rag.retrieval.distinct import DistinctText

    params = spec.values
    if params["hops"] == 2:
        from rag.retrieval.first_stage import SecondHopRetriever
        from rag.retrieval.modes.hybrid import CANDIDATES_PER_SLOT

        deeper = {**params, "top_k": params["top_k"] * CANDIDATES_PER_SLOT}  # candidates for the fusion
        first_stage = SecondHopRetriever(MODES.get(params["mode"]).make(parts, deeper), top_k=params["top_k"])
    else:
        first_stage = MODES.get(params["mode"]).make(parts, params)
    retriever, postprocessors = spec.kind_plugin.retriever(first_stage, parts.storage, params)
    postprocessors.append(DistinctText(docstore=parts.storage.docstore))  # no passage takes two of the LLM's slots
    if params.get("rerank_top_n"):
        rerank = make_reranker(config, params["rerank_top_n"], parts)
        if rerank is not None:
            postprocessors.append(rerank)
    if params.get("context_budget"):
        from rag.retrieval.prune import ContextPruner

        postprocessors.append(ContextPruner(budget=params["context_budget"], config=config))
    return retriever, postprocessors


def retrieve_nodes(retriever: Any, postprocessors: list[Any], question: str | QueryBundle) -> List[NodeWithScore]:
    bundle = QueryBundle(question) if isinstance(question, str) else question
    nodes = retriever.retrieve(bundle)
    for postprocessor in postprocessors:
        nodes = postprocessor.postprocess_nodes(nodes, query_bundle=bundle)
    return nodes


class QueryEngine(RetrieverQueryEngine):
    """A RetrieverQueryEngine that times its stages. Only public methods are overridden:
    ``retrieve`` (what TruLens records as the retrieval span: the final nodes the LLM sees)
    and ``query``."""

    def __init__(self, retriever: Any, synthesizer: Any, postprocessors: list[Any], spec: RetrieverSpec):
        super().__init__(retriever=retriever, response_synthesizer=synthesizer)
        self.spec = spec
        self.postprocessors = postprocessors
        self._stage_seconds: dict[int, tuple[float, float]] = {}  # id(query bundle) -> (retrieve, rerank)

    def retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        start = time.perf_counter()
        nodes = self.retriever.retrieve(query_bundle)
        retrieved = time.perf_counter()
        for postprocessor in self.postprocessors:
            nodes = postprocessor.postprocess_nodes(nodes, query_bundle=query_bundle)
        self._stage_seconds[id(query_bundle)] = (retrieved - start, time.perf_counter() - retrieved)
        return nodes

    def query(self, str_or_query_bundle: str | QueryBundle):
        # One bundle object for the whole call: it keys this call's stage times, so concurrent
        # queries on one engine never mix them up.
        bundle = QueryBundle(str_or_query_bundle) if isinstance(str_or_query_bundle, str) else str_or_query_bundle
        start = time.perf_counter()
        try:
            response = super().query(bundle)
        finally:
            retrieve, rerank = self._stage_seconds.pop(id(bundle), (0.0, 0.0))
        total = time.perf_counter() - start
        if response.metadata is None:
            response.metadata = {}
        # Updated in place: a streaming response fills its usage into the same dict as it ends.
        response.metadata["timings"] = {"retrieve": retrieve, "rerank": rerank,
                                        "generate": max(total - retrieve - rerank, 0.0), "total": total}
        return response


def build_query_engine(spec: RetrieverSpec, parts: IndexParts, llm: Any, config: Any,
                       streaming: bool = False) -> QueryEngine:
    from rag.generation.synthesize import CitingSynthesizer

    retriever, postprocessors = build_retrieval(spec, parts, config)
    synthesizer = CitingSynthesizer(llm=llm, context_window=config.context_window,
                                    max_new_tokens=config.max_new_tokens, streaming=streaming)
    return QueryEngine(retriever, synthesizer, postprocessors, spec)


def sources_of(nodes: list[Any]) -> list[Source]:
    """Our plain :class:`~rag.types.Source` of each LlamaIndex node, in order."""
    out = []
    for n in nodes:
        meta = n.node.metadata
        out.append(Source(file=meta.get("file_name", "?"), page=int(meta.get("page", 0)),
                          page_end=int(meta.get("page_end", meta.get("page", 0))),
                          score=None if n.score is None else float(n.score),
                          text=n.node.get_content(metadata_mode="none")))
    return out
