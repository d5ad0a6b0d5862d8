import pytest

from rag.errors import ConfigError
from rag.registry import Registry


def test_register_get_and_unknown_name_lists_choices():
    registry: Registry[str] = Registry("widget", "widget_setting")
    registry.register("b", "B", help="the b one")
    registry.register("a", "A")
    assert registry.get("a") == "A" and "b" in registry and "c" not in registry
    assert registry.names() == ["a", "b"] and registry.help("b") == "the b one"
    with pytest.raises(ConfigError, match=r"Unknown widget 'c' \(setting widget_setting\). Choose one of: a, b"):
        registry.get("c")
    with pytest.raises(ValueError, match="twice"):
        registry.register("a", "other")


def test_every_registry_discovers_its_plugin_files():
    from rag.embedding import EMBEDDERS
    from rag.evaluation.judges import JUDGES
    from rag.generation import GENERATORS
    from rag.retrieval import RERANKERS, RETRIEVER_KINDS
    from rag.stores import STORES

    assert RETRIEVER_KINDS.names()[:3] == ["basic", "sentence_window", "auto_merging"]
    assert {"local", "openai", "openai_like"} <= set(GENERATORS.names())
    assert {"local", "lexical", "openai"} <= set(JUDGES.names())
    assert {"embedding", "none"} <= set(RERANKERS.names())
    assert "local" in STORES and "minilm" in EMBEDDERS


def test_cli_choices_come_from_the_registries():
    from rag.cli import _parser
    from rag.evaluation.judges import JUDGES
    from rag.generation import GENERATORS

    parser = _parser()
    provider = next(a for a in parser._actions if a.dest == "llm_provider")
    assert list(provider.choices) == GENERATORS.names()
    sub = next(a for a in parser._actions if a.dest == "command")
    judge = next(a for a in sub.choices["eval"]._actions if a.dest == "judge")
    assert list(judge.choices) == JUDGES.names()
    assert "basic | sentence_window | auto_merging" in sub.choices["query"].format_help().replace("\n", " ") \
        or "sentence_window" in sub.choices["query"].format_help()


def test_a_new_retriever_kind_is_one_registration(fake_config):
    from rag.retrieval import RETRIEVER_KINDS
    from rag.retrieval.kind import Param, RetrieverKind, positive_int
    from rag.retrieval.spec import RetrieverSpec

    class Paragraphs(RetrieverKind):
        params = (Param("top_k", "top_k", positive_int),)

    RETRIEVER_KINDS.register("paragraphs_test", Paragraphs("paragraphs_test", "test"))
    try:
        spec = RetrieverSpec.parse("paragraphs_test:top_k=3", fake_config)
        assert spec.name == "paragraphs_test[top_k=3]" and spec.parser_spec.kind == "paragraphs_test"
        with pytest.raises(ConfigError, match="has no parameter 'window_size'"):
            RetrieverSpec.parse("paragraphs_test:window_size=3", fake_config)
    finally:
        RETRIEVER_KINDS.unregister("paragraphs_test")
    assert "paragraphs_test" not in RETRIEVER_KINDS
