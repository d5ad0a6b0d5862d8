"""basic: top-k chunks of one merged Document per PDF (the course's first retriever)."""

from typing import Any

from rag.retrieval.kind import (Param, RetrieverKind, first_stage_params, non_negative_int, optional_top_n,
                                positive_int, pruning_params)


class Basic(RetrieverKind):
    params = (
        Param("chunk_size", "chunk_size", positive_int, shapes_nodes=True),
        Param("chunk_overlap", "chunk_overlap", non_negative_int, shapes_nodes=True),
        *first_stage_params("mode", "hops"),
        Param("top_k", "top_k", positive_int),
        Param("rerank_top_n", None, optional_top_n),
        *pruning_params(),
    )

    def node_parser(self, params: dict[str, Any]) -> Any:
        from llama_index.core.node_parser import SentenceSplitter

        return SentenceSplitter(chunk_size=params["chunk_size"], chunk_overlap=params["chunk_overlap"])

    def check(self, params: dict[str, Any]) -> None:
        if params["chunk_overlap"] >= params["chunk_size"]:
            raise ValueError(f"chunk_overlap ({params['chunk_overlap']}) must be smaller than "
                             f"chunk_size ({params['chunk_size']}).")


PLUGIN = Basic("basic", "top-k chunks by embedding similarity", order=0)
