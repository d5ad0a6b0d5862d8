"""The lexical index beside the vectors: BM25 (``bm25s``) over the embedded nodes of one index.

Tokens: lower-cased words without English stop words, stemmed (Snowball English; harmless for
other scripts), and for Chinese, Japanese and Korean text, which has no spaces, overlapping
character pairs, so a CJK question still shares terms with a CJK passage.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

WORD = re.compile(r"\w+", re.UNICODE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer
    except ImportError:  # PyStemmer is optional: without it, words are matched unstemmed
        return None
    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """The BM25 terms of ``text``."""
    text = text.lower()
    tokens: list[str] = []
    for run in CJK.findall(text):
        tokens.extend(run[i:i + 2] for i in range(max(len(run) - 1, 1)))
    words = [w for w in WORD.findall(CJK.sub(" ", text)) if w not in _stop_words()]
    stemmer = _stemmer()
    tokens.extend(stemmer.stemWords(words) if stemmer else words)
    return tokens


class Bm25Index:
    """BM25 scores of node ids for a query. Build once per index version; it never changes after."""

    def __init__(self, ids: list[str], model):
        self.ids = ids
        self._model = model  # a bm25s.BM25, or None for an empty corpus

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> "Bm25Index":
        import bm25s

        if not ids:
            return cls([], None)
        model = bm25s.BM25()
        model.index([tokenize(t) for t in texts], show_progress=False)
        return cls(list(ids), model)

    def search(self, query: str, top_k: int) -> list[tuple[str, float]]:
        """Up to ``top_k`` (node id, score), best first; nodes sharing no term with the query are left out."""
        if self._model is None or top_k < 1:
            return []
        terms = [t for t in tokenize(query) if t in self._model.vocab_dict]
        if not terms:
            return []
        scores = self._model.get_scores(terms)
        k = min(top_k, len(self.ids))
        best = scores.argsort()[::-1][:k]
        return [(self.ids[i], float(scores[i])) for i in best if scores[i] > 0]

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        import json

        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ids.json").write_text(json.dumps(self.ids))
        if self._model is not None:
            self._model.save(str(directory / "bm25"), show_progress=False)

    @staticmethod
    def saved_ids(directory: Path) -> list[str]:
        """The node ids of a saved index, in order, without loading its scores."""
        import json

        return json.loads((directory / "ids.json").read_text())

    @classmethod
    def load(cls, directory: Path) -> "Bm25Index":
        import bm25s

        ids = cls.saved_ids(directory)
        model = bm25s.BM25.load(str(directory / "bm25")) if ids else None
        return cls(ids, model)

    def to_bytes(self) -> bytes:
        """One blob (a tar of the saved files), for stores that keep the index in a database."""
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp:
            self.save(Path(tmp))
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(tmp, arcname=".")
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Bm25Index":
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
                tar.extractall(tmp, filter="data")
            return cls.load(Path(tmp))
