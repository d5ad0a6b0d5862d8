"""The llama.cpp engine and its LlamaIndex LLM with the real SmolLM2-135M GGUF (about 10 s in all)."""

import os
import threading
import time
from pathlib import Path

import pytest

from rag.errors import ModelUnavailableError

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "List five fruits, one per line."}]


@pytest.fixture(scope="module")
def gguf(tmp_path_factory) -> Path:
    """The user's cached copy when there is one, else a fresh pull into a temporary cache."""
    from rag.generation.catalogue import resolve_gguf

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-pdf"
    try:
        return resolve_gguf("smollm2-135m", cache, fetch=False, progress=False)
    except ModelUnavailableError:
        pass
    try:
        return resolve_gguf("smollm2-135m", tmp_path_factory.mktemp("models"), fetch=True, progress=False)
    except ModelUnavailableError as e:
        pytest.skip(f"SmolLM2 GGUF not available: {e}")


@pytest.fixture(scope="module")
def engine(gguf):
    from rag.generation.llamacpp_engine import get_engine

    return get_engine(gguf, threads=1, context_window=2048)


def test_engine_is_cached_per_file_and_settings(engine, gguf):
    from rag.generation.llamacpp_engine import get_engine

    assert get_engine(str(gguf), threads=1, context_window=2048) is engine


def test_chat_returns_text_and_usage(engine):
    result = engine.chat(QUESTION, max_tokens=40)
    choice = result["choices"][0]
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    assert result["usage"]["prompt_tokens"] > 5 and result["usage"]["completion_tokens"] > 0


def test_stream_is_incremental_and_equals_the_greedy_answer(engine):
    expected = engine.chat(QUESTION, max_tokens=40, temperature=0.0, seed=1)["choices"][0]["message"]["content"]
    start, arrivals, deltas, last = time.monotonic(), [], [], None
    for chunk in engine.stream_chat(QUESTION, max_tokens=40, temperature=0.0, seed=1):
        last = chunk
        delta = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
        if delta:
            deltas.append(delta)
            arrivals.append(time.monotonic() - start)
    assert len(deltas) > 1
    assert "".join(deltas) == expected
    assert last["choices"][0]["finish_reason"] in ("stop", "length") and last["usage"]["completion_tokens"] > 1
    # Tokens come while they are generated, not all at the end. Every request reads its whole prompt
    # (no prefix-cache reuse, for repeatable answers), so the first token waits for that read: what
    # shows streaming is the spread between the first and the last token, not the first one's time.
    assert arrivals[-1] - arrivals[0] > 0.25 * arrivals[-1]


def test_max_tokens_gives_length(engine):
    result = engine.chat(QUESTION, max_tokens=5)
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 5


def test_logprobs_carry_alternatives(engine):
    result = engine.chat(QUESTION, max_tokens=3, logprobs=True, top_logprobs=3)
    tokens = result["choices"][0]["logprobs"]["content"]
    assert len(tokens) == 3
    for token in tokens:
        assert token["logprob"] <= 0 and len(token["top_logprobs"]) == 3
        assert token["top_logprobs"][0]["logprob"] >= token["top_logprobs"][-1]["logprob"]


def test_count_tokens(engine):
    short, longer = engine.count_tokens("hello"), engine.count_tokens("hello world, how are you today?")
    assert 0 < short < longer
    assert len(engine.tokenize("hello world, how are you today?")) == longer


def test_render_applies_the_chat_template(engine):
    """The prompt text the model reads: both messages inside the template, open for the answer."""
    text = engine.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}])
    assert text.index("Be brief.") < text.index("Name a fruit.")
    assert text.rstrip().endswith("assistant")  # SmolLM2's ChatML: "<|im_start|>assistant\n"
    reply = engine.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}],
                        max_tokens=1)
    assert reply["usage"]["prompt_tokens"] == len(engine.tokenize(text)) or \
        reply["usage"]["prompt_tokens"] == len(engine.tokenize(text)) + 1  # + BOS where the model adds one


def test_errors_are_one_line_rag_errors(engine):
    from rag.generation.llamacpp_engine import ContextOverflowError, LlamaCppError

    with pytest.raises(ContextOverflowError, match="context window of 2048") as info:
        engine.chat([{"role": "user", "content": "word " * 3000}], max_tokens=5)
    assert "\n" not in str(info.value)
    with pytest.raises(ContextOverflowError):
        list(engine.stream_chat([{"role": "user", "content": "word " * 3000}], max_tokens=5))
    with pytest.raises(LlamaCppError):
        engine.chat("not a list", max_tokens=5)


def test_threads_share_one_engine(engine):
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(engine.chat(QUESTION, max_tokens=4))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 3 and all(a["usage"]["completion_tokens"] == 4 for a in answers)


def test_llamaindex_llm(gguf):
    from llama_index.core.llms import ChatMessage

    from rag.generation.llamacpp_llm import LlamaCppLLM

    llm = LlamaCppLLM(gguf_path=str(gguf), threads=1, context_window=2048, max_new_tokens=30, temperature=0.0)
    assert llm.metadata.is_chat_model and llm.metadata.model_name == gguf.name
    done = llm.complete("Name three colours.")
    assert done.text and done.additional_kwargs["finish_reason"] in ("stop", "length")
    stream = list(llm.stream_complete("Name three colours."))
    assert len([r for r in stream if r.delta]) > 1 and all(r.delta is not None for r in stream)
    assert stream[-1].text == done.text == "".join(r.delta for r in stream)
    assert stream[-1].additional_kwargs == done.additional_kwargs
    short = llm.chat([ChatMessage(role="user", content="Name three colours.")], max_tokens=5)
    assert short.additional_kwargs == {"prompt_tokens": done.additional_kwargs["prompt_tokens"],
                                       "completion_tokens": 5, "finish_reason": "length"}
    assert llm.count_tokens("one two three") > 0


def test_loading_prints_nothing(gguf, capfd):
    from rag.generation.llamacpp_engine import get_engine

    capfd.readouterr()
    fresh = get_engine(gguf, threads=1, context_window=1024)  # a new size: a new load
    fresh.chat(QUESTION, max_tokens=2)
    assert capfd.readouterr() == ("", "")


def test_llamaindex_instrumentation_sees_the_calls(gguf):
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    from rag.generation.llamacpp_llm import LlamaCppLLM

    class Collect(BaseEventHandler):
        seen: list = []

        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event, **kwargs) -> None:
            self.seen.append(type(event).__name__)

    root, handler = get_dispatcher(), Collect()
    root.add_event_handler(handler)
    try:
        llm = LlamaCppLLM(gguf_path=str(gguf), context_window=2048, max_new_tokens=3)
        llm.complete("Hi")
        list(llm.stream_complete("Hi"))
    finally:
        root.event_handlers.remove(handler)
    assert handler.seen.count("LLMCompletionStartEvent") == 2 and handler.seen.count("LLMCompletionEndEvent") == 2
    assert "LLMCompletionInProgressEvent" in handler.seen


def test_an_answer_does_not_depend_on_the_requests_before_it(engine):
    # A judge's logprobs call and a long prompt in between once changed the next sampled answer
    # (the server's RAM prompt cache restored another request's state): repeats must be exact.
    story = [{"role": "system", "content": "You are a storyteller."},
             {"role": "user", "content": "Write a short story about a lighthouse keeper and a storm. " * 3}]
    first = engine.chat(story, max_tokens=60, temperature=0.8, seed=0)["choices"][0]["message"]["content"]
    engine.chat([{"role": "system", "content": "You are a storyteller."},
                 {"role": "user", "content": "Describe the sea in winter, in detail. " * 20}], max_tokens=5)
    engine.chat([{"role": "system", "content": "You are a storyteller."},
                 {"role": "user", "content": "Is the sea salty? Answer yes or no."}],
                max_tokens=1, logprobs=True, top_logprobs=5)
    again = engine.chat(story, max_tokens=60, temperature=0.8, seed=0)["choices"][0]["message"]["content"]
    assert again == first
