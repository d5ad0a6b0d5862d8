"""sentence_window: match single sentences, hand the LLM the window of sentences around each."""

from typing import Any

from rag.retrieval.kind import (Param, RetrieverKind, first_stage_params, optional_top_n, positive_int,
                                pruning_params)

WINDOW_KEY = "window"


class SentenceWindow(RetrieverKind):
    params = (
        Param("window_size", "window_size", positive_int, shapes_nodes=True),
        *first_stage_params("window_mode", "window_hops"),
        Param("top_k", "window_top_k", positive_int),
        Param("rerank_top_n", "window_rerank_top_n", optional_top_n),
        *pruning_params(),
    )

    def node_parser(self, params: dict[str, Any]) -> Any:
        from llama_index.core.node_parser import SentenceWindowNodeParser

        return SentenceWindowNodeParser.from_defaults(
            window_size=params["window_size"], window_metadata_key=WINDOW_KEY,
            original_text_metadata_key="original_text")

    def retriever(self, first_stage: Any, storage: Any, params: dict[str, Any]) -> tuple[Any, list[Any]]:
        from llama_index.core.postprocessor import MetadataReplacementPostProcessor

        return first_stage, [MetadataReplacementPostProcessor(target_metadata_key=WINDOW_KEY)]


PLUGIN = SentenceWindow("sentence_window", "match sentences, return the surrounding window", order=1)
