"""Reciprocal rank fusion and BM25 terms (no models)."""

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.retrieval.bm25 import Bm25Index, tokenize
from rag.retrieval.first_stage import RRF_K, FusionRetriever


class Fixed(BaseRetriever):
    def __init__(self, ids):
        super().__init__()
        self.ids = ids

    def _retrieve(self, query_bundle):
        return [NodeWithScore(node=TextNode(id_=i, text=i), score=1.0) for i in self.ids]


def test_fusion_adds_weighted_reciprocal_ranks():
    fused = FusionRetriever([(Fixed(["a", "b", "c"]), 1.0), (Fixed(["c", "d"]), 1.0)], top_k=3)
    out = fused.retrieve(QueryBundle("q"))
    assert [n.node.node_id for n in out] == ["c", "a", "b"]  # c: 1/63 + 1/61 beats a: 1/61
    assert abs(out[0].score - (1 / (RRF_K + 3) + 1 / (RRF_K + 1))) < 1e-12
    heavy = FusionRetriever([(Fixed(["a", "b"]), 0.1), (Fixed(["b", "a"]), 1.0)], top_k=2).retrieve(QueryBundle("q"))
    assert [n.node.node_id for n in heavy] == ["b", "a"]


def test_tokens_drop_stop_words_stem_and_pair_cjk_characters():
    tokens = tokenize("The revenues of Apple are rising")
    assert "the" not in tokens and "of" not in tokens and {"revenu", "appl", "rise"} <= set(tokens)
    assert {"污水", "水处"} <= set(tokenize("污水处理"))
    index = Bm25Index.build(["x", "y"], ["Quarterly revenue rose", "污水处理厂"])
    assert index.search("revenues", 5)[0][0] == "x"
    assert index.search("处理", 5)[0][0] == "y"
    assert index.search("unrelated words", 5) == []
    assert Bm25Index.from_bytes(index.to_bytes()).search("revenue", 1) == index.search("revenue", 1)
    assert Bm25Index.build([], []).search("anything", 3) == []
