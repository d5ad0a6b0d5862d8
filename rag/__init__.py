"""Retrieval-augmented question answering over PDFs, with built-in evaluation.

    from rag import RAG
    app = RAG()
    app.ingest("data/")
    print(app.query("How many days of sick leave?", retriever="sentence_window"))
"""

from typing import Any

__all__ = ["RAG", "Chat", "Config", "QueryResult", "Source", "RagError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy: `import rag` (and `rag --help`) must not pull in torch or LlamaIndex.
    if name in ("RAG", "QueryResult", "Source"):
        from rag import app

        return getattr(app, name)
    if name == "Chat":
        from rag.chat import Chat

        return Chat
    if name == "Config":
        from rag.config import Config

        return Config
    if name == "RagError":
        from rag.errors import RagError

        return RagError
    raise AttributeError(name)
