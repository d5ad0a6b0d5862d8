"""Any OpenAI-compatible server: vLLM, Ollama, llama.cpp server, LM Studio ..."""

from typing import Any

from rag.errors import ConfigError
from rag.generation import Generator, api_key


def _make(config: Any) -> Any:
    from llama_index.llms.openai_like import OpenAILike

    if not config.llm_base_url or not config.llm_model:
        raise ConfigError(
            "llm_provider=openai_like needs a server URL and a model name: set RAG_LLM_BASE_URL "
            "(for example http://127.0.0.1:8000/v1 for vLLM, http://127.0.0.1:11434/v1 for Ollama) "
            "and RAG_LLM_MODEL (the name the server knows)."
        )
    return OpenAILike(
        model=config.llm_model,
        api_base=config.llm_base_url,
        api_key=api_key(config.llm_api_key, required=False, what="") or "not-needed",
        temperature=config.temperature,
        max_tokens=config.max_new_tokens,
        context_window=config.context_window,
        is_chat_model=True,
        timeout=config.request_timeout,
    )


PLUGIN = Generator(name="openai_like", help="an OpenAI-compatible server at llm_base_url", make=_make, order=2)
