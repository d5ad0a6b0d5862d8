"""A LlamaIndex LLM that runs a small chat model in-process with transformers (CPU)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import PrivateAttr

_LOADED: dict[str, tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


class LocalTransformersLLM(CustomLLM):
    model_dir: str
    temperature: float = 0.1
    max_new_tokens: int = 256
    context_window: int = 8192

    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _generate_lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def load(cls, model_dir: Path, **kwargs: Any) -> "LocalTransformersLLM":
        llm = cls(model_dir=str(model_dir), **kwargs)
        with _LOAD_LOCK:  # one copy of the weights per process, however many apps
            if llm.model_dir not in _LOADED:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(llm.model_dir)
                model = AutoModelForCausalLM.from_pretrained(llm.model_dir)
                model.eval()
                _LOADED[llm.model_dir] = (model, tokenizer)
        llm._model, llm._tokenizer = _LOADED[llm.model_dir]
        return llm

    @classmethod
    def class_name(cls) -> str:
        return "LocalTransformersLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=True,
            model_name=Path(self.model_dir).name,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate(self, messages: Sequence[ChatMessage]) -> tuple[str, dict[str, int]]:
        import torch

        chat = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        inputs = self._tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt_len = inputs["input_ids"].shape[1]
        # Keep the prompt inside the window; the synthesizer already budgets for this.
        budget = self.context_window - self.max_new_tokens
        if prompt_len > budget:
            inputs = {k: v[:, -budget:] for k, v in inputs.items()}
            prompt_len = budget
        sampling = self.temperature > 0.2  # low temperatures: greedy, deterministic answers
        with self._generate_lock, torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=sampling,
                temperature=self.temperature if sampling else None,
                top_p=None,
                top_k=None,
                repetition_penalty=1.1,
                pad_token_id=self._tokenizer.eos_token_id,
            )
        new_tokens = output[0][prompt_len:]
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return text, {"prompt_tokens": int(prompt_len), "completion_tokens": int(len(new_tokens))}

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text, usage = self._generate(messages)
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                            additional_kwargs=usage, raw={"usage": usage})

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text, usage = self._generate([ChatMessage(role=MessageRole.USER, content=prompt)])
        return CompletionResponse(text=text, additional_kwargs=usage, raw={"usage": usage})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)
        yield response
