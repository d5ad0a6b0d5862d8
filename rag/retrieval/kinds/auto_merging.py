"""auto_merging: embed the smallest chunks of a hierarchy; when enough children of a parent are
retrieved, hand the LLM the parent instead."""

from typing import Any

from rag.retrieval.kind import (Param, RetrieverKind, descending_sizes, first_stage_params, optional_top_n,
                                positive_int, pruning_params, ratio)


class AutoMerging(RetrieverKind):
    params = (
        Param("chunk_sizes", "chunk_sizes", descending_sizes, shapes_nodes=True),
        *first_stage_params("merge_mode", "merge_hops"),
        Param("top_k", "merge_top_k", positive_int),
        Param("rerank_top_n", "merge_rerank_top_n", optional_top_n),
        Param("merge_ratio", "merge_ratio", ratio),
        *pruning_params(),
    )

    def node_parser(self, params: dict[str, Any]) -> Any:
        from llama_index.core.node_parser import HierarchicalNodeParser

        return HierarchicalNodeParser.from_defaults(chunk_sizes=list(params["chunk_sizes"]))

    def embedded(self, nodes: list[Any]) -> list[bool]:
        from llama_index.core.node_parser import get_leaf_nodes

        leaves = {n.node_id for n in get_leaf_nodes(nodes)}
        return [n.node_id in leaves for n in nodes]  # parents live only in the docstore

    def retriever(self, first_stage: Any, storage: Any, params: dict[str, Any]) -> tuple[Any, list[Any]]:
        from llama_index.core.retrievers import AutoMergingRetriever

        # first_stage returns leaves only: parents have no vector and no BM25 entry
        return AutoMergingRetriever(first_stage, storage, simple_ratio_thresh=params["merge_ratio"]), []


PLUGIN = AutoMerging("auto_merging", "match small chunks, merge them into their parents", order=2)
