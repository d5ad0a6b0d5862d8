"""Progress bars for long library calls (ingest, judging a file, writing questions), off when not wanted."""

from __future__ import annotations

from typing import Any, Iterable


def progress_bar(iterable: Iterable | None, show: bool, **kwargs: Any) -> Any:
    """``iterable`` wrapped in a progress bar when ``show``; with ``iterable=None``, a bar to update (or None)."""
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
