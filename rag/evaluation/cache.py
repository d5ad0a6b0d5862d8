"""Evaluation cache: answers and judgements already paid for are not paid for again.

- An answer is keyed by the generator's label, its sampling settings and the exact chat messages
  sent (system prompt, template, numbered contexts, question): a re-run, or a sweep version whose
  contexts come out the same, reuses it. Anything that changes the prompt misses.
- A judgement is keyed by the judge's label, the feedback method and its arguments (question,
  context(s), answer).

One SQLite file per storage folder (``<storage_dir>/cache/evaluation.sqlite``), safe across
threads. ``cache=False`` in :func:`rag.evaluation.evaluate` (``--no-cache``) turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable


class EvaluationCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS entries "
                         "(kind TEXT, key TEXT, value TEXT, PRIMARY KEY (kind, key))")
        self._db.commit()
        self.hits = {"answer": 0, "judgement": 0}
        self.misses = {"answer": 0, "judgement": 0}

    @classmethod
    def for_config(cls, config: Any) -> "EvaluationCache":
        return cls(Path(config.storage_dir) / "cache" / "evaluation.sqlite")

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def get(self, kind: str, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM entries WHERE kind = ? AND key = ?", (kind, key)).fetchone()
            (self.hits if row else self.misses)[kind] += 1
        return None if row is None else json.loads(row[0])

    def contains(self, kind: str, key: str) -> bool:
        """Whether an entry is there (not counted as a hit or a miss)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM entries WHERE kind = ? AND key = ?", (kind, key)).fetchone() is not None

    def put(self, kind: str, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", (kind, key, json.dumps(value)))
            self._db.commit()

    def summary(self) -> str:
        parts = []
        for kind in ("answer", "judgement"):
            total = self.hits[kind] + self.misses[kind]
            if total:
                parts.append(f"{kind}s {self.hits[kind]} of {total} from cache")
        return "; ".join(parts)

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------- answers

class CachedChat:
    """Wraps the LLM that answers: ``chat`` is answered from the cache when the messages were seen
    before; everything else goes to the wrapped LLM."""

    def __init__(self, llm: Any, cache: EvaluationCache, label: str, settings: dict[str, Any]):
        self._inner, self._cache, self._label, self._settings = llm, cache, label, settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def chat(self, messages: Any, **kwargs: Any) -> Any:
        from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole

        sent = [(str(m.role.value if hasattr(m.role, "value") else m.role), m.content) for m in messages]
        key = self._cache.key(self._label, self._settings, sent, kwargs)
        hit = self._cache.get("answer", key)
        if hit is not None:
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=hit["content"]),
                                additional_kwargs={**hit["extra"], "cached": True})
        response = self._inner.chat(messages, **kwargs)
        extra = {k: v for k, v in (getattr(response, "additional_kwargs", None) or {}).items()
                 if isinstance(v, (str, int, float, bool)) or v is None}
        self._cache.put("answer", key, {"content": response.message.content or "", "extra": extra})
        return response


# ---------------------------------------------------------------- judgements

def cached_feedback(function: Callable[..., Any], cache: EvaluationCache | None, label: str) -> Callable[..., Any]:
    """``function`` (a provider's feedback method) answered from the cache for arguments seen before.
    The signature is kept (``functools.wraps``): TruLens binds its selectors by parameter name."""
    if cache is None:
        return function
    from rag.evaluation.judges import JUDGES_VERSION

    name = getattr(function, "__name__", "feedback")

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = cache.key(label, name, JUDGES_VERSION, args, kwargs)
        hit = cache.get("judgement", key)
        if hit is not None:
            return tuple(hit) if isinstance(hit, list) else hit
        result = function(*args, **kwargs)
        with contextlib.suppress(TypeError, ValueError):  # a result that is not JSON is simply not cached
            cache.put("judgement", key, list(result) if isinstance(result, tuple) else result)
        return result

    return wrapper
