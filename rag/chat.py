"""A conversation over one loaded index and model (``rag chat`` is a thin loop around it).

    chat = Chat(RAG(), retriever="sentence_window")
    reply = chat.ask("How many days of sick leave are paid?")
    for text in reply:                     # the answer as the model writes it
        print(text, end="")
    reply = chat.ask("And for part-time staff?")
    print(reply.standalone)                # the follow-up rewritten from the history
    print(chat.command("/sources"))        # slash commands return the text to show

Follow-ups are condensed into a standalone question by the same LLM before retrieval (retrieval
sees only the question, so "And for part-time staff?" alone would find nothing useful).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from rag.errors import RagError
from rag.types import QueryResult

CONDENSE_PROMPT = """Rewrite the follow-up question as one standalone question that can be understood \
without the conversation: keep the names, numbers and topic it refers to. Do not answer it. \
Reply with the question only.

Conversation:
{history}

Follow-up question: {question}
Standalone question:"""

HELP = """Commands:
  /retriever [SPEC]  show or switch the retriever, e.g. /retriever sentence_window:window_size=1
  /sources [N]       the sources of the last answer; with N, the text of source N
  /history           the questions asked so far (as asked, and as searched for)
  /clear             forget the history: the next question starts a new topic
  /help              this text
  /quit              leave (also Ctrl-D)
Anything else is a question; follow-ups may refer to earlier answers."""

CONDENSE_TOKENS = 64
MAX_STANDALONE_CHARS = 500  # a condensation longer than this is rambling: keep the user's words


@dataclass
class Turn:
    question: str  # as typed
    standalone: str  # as searched for
    result: QueryResult


class Chat:
    """Questions and follow-ups over one :class:`rag.RAG` app and one retriever at a time."""

    def __init__(self, app: Any, retriever: str = "basic", history_turns: int = 3):
        self.app = app
        self.spec = app.spec(retriever)  # a bad spec fails here, before anything loads
        self.history_turns = history_turns  # turns shown to the LLM when condensing
        self.turns: list[Turn] = []
        self.closed = False

    def load(self) -> None:
        """Load the index and the model now, so that the first question does not wait for them."""
        self.app.query_engine(self.spec, streaming=True)

    # ------------------------------------------------------------ questions
    def standalone(self, question: str) -> str:
        """``question`` rewritten without references to the history (unchanged when there is none)."""
        if not self.turns:
            return question
        from llama_index.core.llms import ChatMessage, MessageRole

        history = "\n".join(f"User: {t.standalone}\nAssistant: {t.result.answer}"
                            for t in self.turns[-self.history_turns:])
        prompt = CONDENSE_PROMPT.format(history=history, question=question)
        # One short line is wanted: a small token cap keeps a follow-up from paying for a second answer.
        reply = self.app.llm.chat([ChatMessage(role=MessageRole.USER, content=prompt)], max_tokens=CONDENSE_TOKENS,
                                  temperature=0.0)
        text = reply.message.content or ""
        lines = [line.strip().strip('"').strip() for line in text.strip().splitlines() if line.strip()]
        rewritten = lines[0].removeprefix("Standalone question:").strip() if lines else ""
        return rewritten if 0 < len(rewritten) <= MAX_STANDALONE_CHARS else question

    def ask(self, question: str) -> "Reply":
        """Answer ``question`` (a follow-up is condensed first); iterate the reply for its text."""
        standalone = self.standalone(question.strip())
        stream = self.app.query(standalone, retriever=self.spec, stream=True)
        return Reply(self, question.strip(), standalone, stream)

    # ------------------------------------------------------------ commands
    def command(self, line: str) -> str:
        """Run a slash command; returns what to show. ``/quit`` sets ``closed``."""
        name, _, arg = line.strip().partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in ("/quit", "/exit", "/q"):
            self.closed = True
            return "Bye."
        if name in ("/help", "/?"):
            return HELP
        if name == "/retriever":
            return self._retriever(arg)
        if name == "/sources":
            return self._sources(arg)
        if name == "/history":
            if not self.turns:
                return "No questions yet."
            return "\n".join(f"{i}. {t.question}" + (f"\n   (searched for: {t.standalone})"
                                                       if t.standalone != t.question else "")
                             for i, t in enumerate(self.turns, start=1))
        if name == "/clear":
            self.turns.clear()
            return "History cleared: the next question starts a new topic."
        return f"Unknown command {name}: /help lists the commands."

    def _retriever(self, arg: str) -> str:
        from rag.retrieval import RETRIEVER_KINDS

        if not arg:
            return f"Retriever: {self.spec.name}. Kinds: {', '.join(RETRIEVER_KINDS.names())}."
        try:
            spec = self.app.spec(arg)
            self.app.query_engine(spec, streaming=True)  # load its index now: errors show here
        except RagError as exc:
            return f"error: {exc}"
        self.spec = spec
        return f"Retriever: {spec.name}."

    def _sources(self, arg: str) -> str:
        if not self.turns:
            return "No answer yet: ask a question first."
        sources = self.turns[-1].result.sources
        if not arg:
            return "\n".join(f"[{i}] {s.citation}" + (f" (score {s.score:.2f})" if s.score is not None else "")
                             for i, s in enumerate(sources, start=1)) or "The last answer had no sources."
        if not arg.isdigit() or not 1 <= int(arg) <= len(sources):
            return f"No source {arg}: the last answer has sources 1 to {len(sources)}."
        source = sources[int(arg) - 1]
        return f"[{arg}] {source.citation}\n{source.text.strip()}"


class Reply:
    """One answer: iterate for its text as it is written; ``result`` is the whole QueryResult.
    The turn joins the history once the answer is complete (an interrupted one does not)."""

    def __init__(self, chat: Chat, question: str, standalone: str, stream: Any):
        self.chat, self.question, self.standalone, self._stream = chat, question, standalone, stream
        self._recorded = False

    def __iter__(self) -> Iterator[str]:
        yield from self._stream
        self._record()

    @property
    def result(self) -> QueryResult:
        result = self._stream.result
        self._record()
        return result

    def _record(self) -> None:
        if not self._recorded:
            self._recorded = True
            self.chat.turns.append(Turn(self.question, self.standalone, self._stream.result))
