"""The OpenAI API (gpt-3.5-turbo by default, the course's model)."""

from typing import Any

from rag.generation import Generator, api_key, model_name


def _make(config: Any) -> Any:
    from llama_index.llms.openai import OpenAI

    return OpenAI(
        model=model_name(config),
        temperature=config.temperature,
        max_tokens=config.max_new_tokens,
        api_key=api_key(config.llm_api_key, required=True, what="the OpenAI generator"),
        api_base=config.llm_base_url,
        timeout=config.request_timeout,
    )


PLUGIN = Generator(name="openai", help="OpenAI API (needs OPENAI_API_KEY)", make=_make,
                   default_model="gpt-3.5-turbo", order=1)
