"""The prompt budget: a huge question is refused in one line, the system prompt is never cut, and
the answer's sources are exactly the ones the LLM was shown."""

import pytest
from fakes import PROMPTS, EchoLLM
from llama_index.core.schema import NodeWithScore, TextNode
from pdfs import make_pdf

from rag import RAG
from rag.errors import ConfigError, InputError
from rag.generation.synthesize import SYSTEM_PROMPT, CitingSynthesizer


def nodes(count: int, words: int) -> list[NodeWithScore]:
    return [NodeWithScore(node=TextNode(text=" ".join(f"w{i}x{j}" for j in range(words)) + ".",
                                        metadata={"file_name": f"f{i}.pdf", "page": 1, "page_end": 1}),
                          score=1.0 - i / 10) for i in range(count)]


def test_a_100_kb_question_is_refused_in_one_line():
    synth = CitingSynthesizer(llm=EchoLLM(), context_window=8192, max_new_tokens=192)
    question = "why " * 25_000  # 100 KB
    with pytest.raises(InputError) as error:
        synth.synthesize(question, nodes(4, 50))
    message = str(error.value)
    assert "\n" not in message and "too long" in message and "context_window=8192" in message


def test_a_long_question_that_fits_keeps_the_system_prompt_and_some_sources():
    PROMPTS.clear()
    synth = CitingSynthesizer(llm=EchoLLM(), context_window=1000, max_new_tokens=100)
    question = " ".join(f"q{i}" for i in range(300)) + "?"
    response = synth.synthesize(question, nodes(6, 100))
    system, user = PROMPTS[-1]
    assert system == SYSTEM_PROMPT
    assert user.rstrip().endswith(question + "\nAnswer:")  # the question is whole
    assert sum(len(text.split()) for text in (system, user)) <= 1000 - 100
    shown = [i for i in range(1, 7) if f"[{i}] " in user]
    assert shown == list(range(1, len(shown) + 1)) and 1 <= len(shown) < 6
    # Only what the LLM saw is claimed as a source, in the prompt's numbering.
    assert [n.node.metadata["file_name"] for n in response.source_nodes] == [f"f{i - 1}.pdf" for i in shown]
    assert response.metadata["sources_left_out"] == 6 - len(shown)


def test_streaming_claims_only_the_sources_shown():
    synth = CitingSynthesizer(llm=EchoLLM(), context_window=700, max_new_tokens=100, streaming=True)
    response = synth.synthesize("Which words?", nodes(5, 120))
    assert 1 <= len(response.source_nodes) < 5
    assert response.metadata["sources_left_out"] == 5 - len(response.source_nodes)


def test_a_window_too_small_for_any_source_is_a_setting_error():
    synth = CitingSynthesizer(llm=EchoLLM(), context_window=300, max_new_tokens=250)
    with pytest.raises(ConfigError, match="context_window=300 leaves no room"):
        synth.synthesize("Which word?", nodes(2, 10))


def test_the_api_refuses_a_huge_question_before_answering(tmp_path, fake_config):
    make_pdf(tmp_path / "docs" / "memo.pdf", ["The library closes at six in the evening."])
    app = RAG(fake_config, progress=False)
    app.ingest(tmp_path / "docs", progress=False)
    PROMPTS.clear()
    with pytest.raises(InputError, match="The question is too long"):
        app.query("When does the library close? " + "please " * 20_000)
    assert not PROMPTS  # the LLM was never called
    result = app.query("When does the library close?")
    assert result.sources and result.cited == [1] and "six in the evening" in result.answer
