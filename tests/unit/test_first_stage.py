"""Reciprocal rank fusion and BM25 terms (no models)."""

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.retrieval.bm25 import Bm25Index, tokenize
from rag.retrieval.first_stage import RRF_K, FusionRetriever, SecondHopRetriever


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


class ByQuery(BaseRetriever):
    """Rankings keyed by a word of the query: stands in for a search that follows the query's words."""

    def __init__(self, texts, rankings):
        super().__init__()
        self.texts, self.rankings, self.queries = texts, rankings, []

    def _retrieve(self, query_bundle):
        self.queries.append(query_bundle.query_str)
        key = "follow" if "Nolan" in query_bundle.query_str else "plain"
        return [NodeWithScore(node=TextNode(id_=i, text=self.texts[i]), score=1.0) for i in self.rankings[key]]


def test_second_hop_asks_again_with_the_top_passages_new_words_and_keeps_it_first():
    texts = {"film": "Inception is a film directed by Christopher Nolan.", "other": "Another film.",
             "nolan": "Christopher Nolan was born in London.", "noise": "Unrelated."}
    base = ByQuery(texts, {"plain": ["film", "other", "noise"], "follow": ["film", "nolan", "other"]})
    out = SecondHopRetriever(base, top_k=3).retrieve(QueryBundle("Where was the director of the film Inception born?"))
    assert [n.node.node_id for n in out] == ["film", "other", "nolan"]  # other: 1/62 + 1/63 > nolan: 1/62
    second = base.queries[1]
    assert "Christopher Nolan" in second and "Inception" not in second  # only the words the question lacks
    alone = SecondHopRetriever(ByQuery(texts, {"plain": [], "follow": []}), top_k=3)
    assert alone.retrieve(QueryBundle("q")) == []
