"""One writer at a time per storage folder: an exclusive ``flock`` on ``<storage>/.lock``.

The kernel drops the lock when its process ends, however it ends (kill -9 included), so a lock
is never stale; the file keeps the last holder's pid only to say who is writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from rag.errors import RagError


class StoreBusyError(RagError):
    """Another process is writing to the storage folder."""


@contextlib.contextmanager
def writer_lock(root: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the folder's writer lock; wait up to ``wait_s`` seconds for another writer to finish."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                    raise StoreBusyError(
                        f"{root}: another ingest (pid {holder}) is writing to this storage folder. Wait for it "
                        "to finish, or set RAG_LOCK_TIMEOUT=SECONDS to wait for it."
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
