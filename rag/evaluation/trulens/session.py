"""The TruLens session on our database, opened once per process and URL.

:func:`open_session` opens ``config.resolved_database_url`` (SQLite in the storage folder by
default; any SQLAlchemy URL such as ``postgresql://user:pw@host/db`` is passed through as is).
TruLens' own default, ``default.sqlite`` in the working directory, is never used. TruLens is
imported inside functions: ``import rag`` (and ``rag --help``) must not pay its ~10 s import.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import threading
from pathlib import Path
from typing import Any

from rag.config import Config

_LOCK = threading.Lock()
_ATEXIT_REGISTERED = False


def database_url(config_or_url: Config | str) -> str:
    url = config_or_url.resolved_database_url if isinstance(config_or_url, Config) else str(config_or_url)
    if not url:
        raise ValueError("An explicit database URL is required (TruLens' implicit default.sqlite is never used).")
    return url


def session_kwargs(config_or_url: Config | str) -> dict[str, Any]:
    """Arguments for ``TruSession``: our URL, unchanged."""
    return {"database_url": database_url(config_or_url)}


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and result files."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


_QUIET = False


def quiet_trulens_logs() -> None:
    """Drop TruLens log lines that are noise for us (idempotent).

    - "No evaluator thread is running.": logged when a recorder is garbage-collected; we
      compute feedback synchronously and never start that thread.
    - "Package ... not present in requirements.": an optional-import check at import time.
    - "... no reference value for this record": a reference metric of a failed answer (recording.py).
    """
    global _QUIET
    if _QUIET:
        return
    logging.getLogger("trulens.core.utils.evaluator").addFilter(_DropMessages("No evaluator thread is running"))
    logging.getLogger("trulens.core.utils.imports").addFilter(_DropMessages("not present in requirements"))
    # Reference metrics have no value for failed answers: no result is stored, nothing to report.
    logging.getLogger("trulens.feedback.computer").addFilter(_DropMessages("no reference value for this record"))
    _QUIET = True


def open_session(config_or_url: Config | str):
    """The TruLens session on our database.

    ``TruSession`` is a process-wide singleton: when one is already open on another database
    (another storage folder, a test), it is flushed, its span exporter is disabled and it is
    replaced, so records never land in the wrong database.
    """
    kwargs = session_kwargs(config_or_url)
    url = kwargs["database_url"]
    _ensure_sqlite_folder(url)
    quiet_trulens_logs()
    _import_trulens()
    from trulens.core import TruSession

    with _LOCK:
        current = _current_session(TruSession)
        if current is not None:
            if _same_url(_session_url(current), url):
                return current
            with contextlib.suppress(Exception):
                current.force_flush()
            TruSession.delete_singleton(TruSession)
        # A second session re-adds its span processor to the global tracer provider, and
        # OpenTelemetry logs a warning that the provider cannot be replaced: expected here.
        otel_logger = logging.getLogger("opentelemetry.trace")
        level = otel_logger.level
        otel_logger.setLevel(logging.ERROR)
        try:
            session = TruSession(**kwargs)
        finally:
            otel_logger.setLevel(level)
        _wait_for_background_imports()
        _register_flush_at_exit()
        return session


def _import_trulens() -> None:
    """Import the TruLens modules we use, on this thread, before any session exists.

    TruLens' ``OptionalImports`` swaps ``builtins.__import__`` process-wide while it imports
    optional packages, and that hook writes every ``from X import name as alias`` into the
    importing module's globals under ``name``. A TruLens module first imported on another
    thread during that window gets corrupted: ``trulens.core.app`` ends up with
    ``threading = trulens.core.utils.threading`` (``AttributeError: ... no attribute 'Lock'``
    when a recorder is created). ``TruSession()`` starts such imports on a background
    thread (cost tracking), so everything is imported first, here, and that thread is joined.
    """
    import trulens.apps.llamaindex  # noqa: F401
    import trulens.core.metric.metric  # noqa: F401
    import trulens.feedback  # noqa: F401


def _wait_for_background_imports() -> None:
    try:
        from trulens.experimental.otel_tracing.core.session import _TruSession

        _TruSession._ensure_costs_tracked()  # joins the cost-tracking set-up thread
    except Exception:  # pragma: no cover - best effort across TruLens versions
        pass


def _current_session(cls: Any) -> Any:
    instances = getattr(type(cls), "_singleton_instances", {})
    return instances.get((f"{cls.__module__}.{cls.__name__}", None))


def _session_url(session: Any) -> str | None:
    try:
        return session.connector.db.engine.url.render_as_string(hide_password=False)
    except Exception:
        return None


def _same_url(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        from sqlalchemy.engine import make_url

        return make_url(a) == make_url(b)
    except Exception:
        return a == b


def _ensure_sqlite_folder(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix):].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def _register_flush_at_exit() -> None:
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(flush)
        _ATEXIT_REGISTERED = True


def flush(timeout_s: float = 30.0) -> bool:
    """Write any spans still buffered in memory to the database."""
    try:
        from trulens.core import TruSession
    except ImportError:
        return True
    current = _current_session(TruSession)
    if current is None:
        return True
    try:
        return bool(current.force_flush(timeout_millis=int(timeout_s * 1000)))
    except Exception:
        return False
