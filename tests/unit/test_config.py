import pytest

from rag.config import Config
from rag.errors import ConfigError
from rag.retrieval.spec import RetrieverSpec


def test_toml_then_environment_then_overrides(tmp_path):
    toml = tmp_path / "rag.toml"
    toml.write_text('[rag]\nstorage_dir = "idx"\nwindow_size = 2\nchunk_sizes = [1024, 256]\nreranker = "none"\n')
    env = {"RAG_WINDOW_SIZE": "4", "RAG_LLM_PROVIDER": "openai_like", "RAG_TEMPERATURE": "0.3"}
    config = Config.load(toml, env=env, top_k=7)
    assert str(config.storage_dir) == "idx" and config.chunk_sizes == (1024, 256) and config.reranker == "none"
    assert config.window_size == 4 and config.llm_provider == "openai_like" and config.temperature == 0.3
    assert config.top_k == 7


def test_bad_settings_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.load(env={}, windowsize=3)
    with pytest.raises(ConfigError, match="window_size='three' is not a valid int"):
        Config.load(env={"RAG_WINDOW_SIZE": "three"})
    bad = tmp_path / "bad.toml"
    bad.write_text("window_size = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "missing.toml", env={})


def test_retriever_specs_take_defaults_from_config_and_name_every_parameter():
    config = Config(window_size=2, merge_top_k=20)
    spec = RetrieverSpec.parse("sentence_window:top_k=4", config)
    assert spec.values == {"window_size": 2, "mode": "hybrid", "dense_weight": 1.0, "bm25_weight": 1.0, "hops": 1,
                           "top_k": 4, "rerank_top_n": 2, "context_budget": 500}
    assert spec.name == "sentence_window[window_size=2,mode=hybrid,top_k=4,rerank_top_n=2,context_budget=500]"
    weighted = RetrieverSpec.parse("basic:bm25_weight=0.5", config)
    assert weighted.name == "basic[chunk_size=256,chunk_overlap=25,mode=hybrid,bm25_weight=0.5,top_k=4,rerank_top_n=None,context_budget=500]"
    assert "weight" not in RetrieverSpec.parse("basic:mode=dense,bm25_weight=0.5", config).name
    merged = RetrieverSpec.parse("auto_merging:chunk_sizes=2048,512,merge_ratio=0.3", config)
    assert merged.values["chunk_sizes"] == (2048, 512) and merged.values["top_k"] == 20
    assert merged.values["merge_ratio"] == 0.3
    # Parameters that shape nodes select the index; query-time ones do not.
    assert merged.parser_spec != RetrieverSpec.parse("auto_merging", config).parser_spec
    assert spec.parser_spec == RetrieverSpec.parse("sentence_window:top_k=9", config).parser_spec


def test_database_defaults_to_sqlite_in_storage(tmp_path):
    config = Config(storage_dir=tmp_path)
    assert config.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/evaluations.sqlite"
    assert Config(database_url="postgresql://u@127.0.0.1/db").resolved_database_url.startswith("postgresql://")
