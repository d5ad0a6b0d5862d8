"""The TruLens dashboard on our database, served on 127.0.0.1 only, with no phoning home.

    url, process = start_dashboard(config)   # e.g. http://127.0.0.1:8612
    ...
    stop(process)

We start TruLens' Streamlit app ourselves (``python -m streamlit run dashboard_app.py
-- --database-url URL``, a wrapper around trulens/dashboard/main.py), which is what ``trulens-dashboard`` / ``run_dashboard`` do, because
both wait for Streamlit's "Local URL:" line: once ``--server.address`` is set Streamlit 1.67
prints "URL:" instead, so they time out, and without the address Streamlit listens on every
interface. Readiness is checked by polling Streamlit's health endpoint instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from rag.config import Config
from rag.errors import RagError

HOST = "127.0.0.1"
DATABASE_URL_ENV = "RAG_DASHBOARD_DATABASE_URL"  # how the child gets the URL (it may hold a password)

# Streamlit / TruLens settings that keep the dashboard local and silent.
NO_PHONE_HOME_ENV = {
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",  # Streamlit usage statistics
    "STREAMLIT_SERVER_HEADLESS": "true",  # no browser launch, no e-mail prompt
    "STREAMLIT_GLOBAL_DEVELOPMENT_MODE": "false",
    "STREAMLIT_SERVER_SHOW_EMAIL_PROMPT": "false",
    "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


class DashboardError(RagError):
    pass


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def dashboard_command(config: Config, port: int, host: str = HOST) -> list[str]:
    """The command that serves the TruLens dashboard for ``config``'s database.

    The database URL is not on it (a command line is visible to every user in ``ps``): the child
    reads it from ``DATABASE_URL_ENV`` (see :func:`dashboard_env`).
    """
    from importlib.util import find_spec

    from rag.evaluation.trulens.session import database_url

    spec = find_spec("trulens.dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("The dashboard needs the package trulens-dashboard: pip install trulens-dashboard")
    main = Path(__file__).with_name("dashboard_app.py")  # TruLens' main.py, minus its remote page icon
    return [
        sys.executable, "-m", "streamlit", "run", str(main),
        f"--server.address={host}", f"--server.port={port}", "--server.headless=true",
        "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
        "--client.toolbarMode=viewer", "--global.disableWidgetStateDuplicationWarning=true",
        "--theme.base=dark",
        "--", "--database-prefix", _table_prefix(database_url(config)),
    ]


def dashboard_env(config: Config) -> dict[str, str]:
    """The child's environment: ours, the no-phone-home settings and the database URL."""
    from rag.evaluation.trulens.session import database_url

    return {**os.environ, **NO_PHONE_HOME_ENV, "TRULENS_OTEL_TRACING": "1",  # read spans as they were written
            DATABASE_URL_ENV: database_url(config)}


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something already listens on ``host:port`` (it answers, or the port cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _table_prefix(url: str) -> str:
    try:
        from trulens.dashboard.cli import detect_database_prefix

        return detect_database_prefix(url) or "trulens_"
    except Exception:
        return "trulens_"


def start_dashboard(config: Config, port: int | None = None, timeout_s: float = 120.0,
                    log_path: str | Path | None = None) -> tuple[str, subprocess.Popen]:
    """Serve the dashboard on ``http://127.0.0.1:<port>``; returns ``(url, process)`` once it answers.

    The process's output goes to ``log_path`` (default ``<storage_dir>/dashboard.log``).
    """
    from rag.evaluation.trulens.session import database_url, open_session

    url_db = database_url(config)
    if url_db.startswith("sqlite:///"):
        open_session(config)  # create / migrate the database so the dashboard finds its tables
    if port and port_in_use(port):
        raise DashboardError(f"Port {port} on {HOST} is already in use by another program: stop it, "
                             "or choose a free port (rag dashboard --port N).")
    show_labels(url_db)
    port = port or free_port()
    env = dashboard_env(config)
    log_path = Path(log_path) if log_path else Path(config.storage_dir) / "dashboard.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        process = subprocess.Popen(dashboard_command(config, port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        log.close()
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DashboardError(f"The dashboard exited with code {process.returncode}; see {log_path}.")
            if _answers(f"{url}/_stcore/health") and process.poll() is None:
                return url, process
            time.sleep(0.5)
    except BaseException:  # a signal or Ctrl-C while waiting must not leave the child serving
        stop(process)
        raise
    stop(process)
    raise DashboardError(f"The dashboard did not answer on {url} within {timeout_s:.0f} s; see {log_path}.")


def show_labels(url: str) -> None:
    """Bring the dashboard's copy of the labels up to date: labels stored from Python or by
    ``rag serve`` are synced by nobody else. A failure leaves the dashboard usable, without them."""
    from contextlib import closing

    from rag.evaluation.labeling import sync_label_feedback
    from rag.evaluation.labels import LabelStore, has_table

    try:
        if not has_table(url):  # no labels table: nothing to show, and no table of ours made before TruLens'
            return
        with closing(LabelStore(url)) as store:
            sync_label_feedback(store, url)
    except Exception as exc:  # the dashboard is still worth having
        import warnings

        warnings.warn(f"The dashboard will not show your labels ({type(exc).__name__}: {exc}); "
                      "`rag label --export FILE` still reads them.", stacklevel=2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop(process: Any, timeout_s: float = 10.0) -> None:
    """Stop a dashboard started by :func:`start_dashboard` (its whole process group)."""
    if process is None or process.poll() is not None:
        return
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait(timeout=timeout_s)


stop_dashboard = stop


def run_dashboard(config: Config, port: int | None, started: Callable[[str], Any]) -> int:
    """Start the dashboard, call ``started(url)``, and wait for it: its exit code if it ends by
    itself. SIGTERM and SIGHUP (installed before the start: also while it warms up) and Ctrl-C
    stop it too, as a SystemExit or KeyboardInterrupt after the child is stopped."""
    import signal

    def stop_on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the child

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    url, process = start_dashboard(config, port=port)
    started(url)
    try:
        return process.wait()
    finally:
        stop(process)
