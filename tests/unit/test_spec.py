import pytest

from rag.config import Config
from rag.errors import ConfigError
from rag.retrieval.spec import RetrieverSpec, split_spec


@pytest.mark.parametrize("text, kind, params", [
    ("basic", "basic", {}),
    ("sentence_window:window_size=1,top_k=4", "sentence_window", {"window_size": "1", "top_k": "4"}),
    ("auto_merging:chunk_sizes=2048,512,merge_ratio=0.3", "auto_merging",
     {"chunk_sizes": "2048,512", "merge_ratio": "0.3"}),
])
def test_split_spec(text, kind, params):
    assert split_spec(text) == (kind, params)


def test_defaults_come_from_the_config_and_names_are_stable():
    config = Config(window_size=2, window_top_k=5, window_mode="dense")
    spec = RetrieverSpec.parse("sentence_window", config)
    assert spec.values == {"window_size": 2, "mode": "dense", "dense_weight": 1.0, "bm25_weight": 1.0, "hops": 1,
                           "top_k": 5, "rerank_top_n": 2, "context_budget": 500}
    assert spec.name == "sentence_window[window_size=2,mode=dense,top_k=5,rerank_top_n=2,context_budget=500]"
    assert RetrieverSpec.parse(spec, config) == spec
    assert RetrieverSpec.parse("basic:rerank_top_n=0", config).values["rerank_top_n"] is None


def test_modes_are_checked_and_do_not_select_an_index():
    config = Config()
    with pytest.raises(ConfigError, match="invalid value mode='fuzzy'"):
        RetrieverSpec.parse("basic:mode=fuzzy", config)
    with pytest.raises(ConfigError, match="bm25_weight='-1'"):
        RetrieverSpec.parse("basic:bm25_weight=-1", config)
    assert (RetrieverSpec.parse("basic:mode=bm25", config).parser_spec
            == RetrieverSpec.parse("basic:mode=dense", config).parser_spec)


def test_only_node_shaping_parameters_select_an_index():
    config = Config()
    a = RetrieverSpec.parse("auto_merging:top_k=3", config).parser_spec
    b = RetrieverSpec.parse("auto_merging:top_k=30,merge_ratio=0.2", config).parser_spec
    c = RetrieverSpec.parse("auto_merging:chunk_sizes=1024,256", config).parser_spec
    assert a.key == b.key != c.key


@pytest.mark.parametrize("text, message", [
    ("basic:top_k=-5", "invalid value top_k='-5'"),
    ("basic:chunk_size=64,chunk_overlap=300", "must be smaller than chunk_size"),
    ("auto_merging:chunk_sizes=128,512", "invalid value chunk_sizes"),
    ("auto_merging:merge_ratio=7", "invalid value merge_ratio"),
    ("sentence_window:window_size=-1", "invalid value window_size"),
    ("basic:top_k", "expected key=value"),
    ("nope", "Unknown retriever 'nope'"),
])
def test_bad_parameters_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        RetrieverSpec.parse(text, Config())


def test_bad_settings_are_caught_where_they_are_used():
    with pytest.raises(ConfigError, match="invalid setting merge_ratio"):
        RetrieverSpec.parse("auto_merging", Config(merge_ratio=7))
    with pytest.raises(ConfigError, match="invalid setting window_top_k"):
        RetrieverSpec.parse("sentence_window", Config(window_top_k=0))
