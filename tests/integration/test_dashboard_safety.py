"""Dashboard safety: a port that another program serves is refused in one line, and the database
URL (which may hold a PostgreSQL password) never reaches a command line, the output or the log."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag import Config
from rag.evaluation.trulens.dashboard import (DATABASE_URL_ENV, DashboardError, dashboard_command, free_port,
                                              start_dashboard, stop)

APP = Path(__file__).resolve().parents[2] / "rag" / "evaluation" / "trulens" / "dashboard_app.py"
SECRET = "Pa55-w0rd-never-shown"


@pytest.fixture
def other_server():
    """Another program's HTTP server on 127.0.0.1, answering 200 everywhere (also on /_stcore/health)."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"someone else")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_port_that_already_answers_is_refused(tmp_path, other_server):
    config = Config(storage_dir=tmp_path / "storage")
    with pytest.raises(DashboardError) as error:
        start_dashboard(config, port=other_server, log_path=tmp_path / "dashboard.log")
    message = str(error.value)
    assert f"Port {other_server}" in message and "already in use" in message and "\n" not in message
    assert not (tmp_path / "dashboard.log").exists()  # nothing was started


def closed_port_url() -> str:
    return f"postgresql://rag:{SECRET}@127.0.0.1:{free_port()}/rag"


def test_the_database_url_is_not_on_the_command_line(tmp_path):
    command = dashboard_command(Config(storage_dir=tmp_path / "s", database_url=closed_port_url()), port=8555)
    assert not any(SECRET in part for part in command) and "--database-url" not in command


def test_a_started_dashboard_keeps_the_password_out_of_ps_and_its_log(tmp_path):
    config = Config(storage_dir=tmp_path / "storage", database_url=closed_port_url())
    log = tmp_path / "dashboard.log"
    url, process = start_dashboard(config, timeout_s=240, log_path=log)
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert "streamlit" in cmdline and SECRET not in cmdline
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().decode(errors="replace")
        assert f"{DATABASE_URL_ENV}={config.database_url}" in environ.split("\0")  # passed this way
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert SECRET not in ps
    finally:
        stop(process)
    assert SECRET not in url and SECRET not in log.read_text(errors="replace")


def test_the_dashboard_script_opens_the_database_from_the_environment(tmp_path):
    """TruLens' app (run bare, without a browser) opens the URL given through the environment."""
    database = tmp_path / "from_env.sqlite"
    env = {**os.environ, DATABASE_URL_ENV: f"sqlite:///{database}", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.run([sys.executable, str(APP), "--database-prefix", "trulens_"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert database.is_file() and database.stat().st_size > 0
    assert not (tmp_path / "default.sqlite").exists()  # not TruLens' implicit default
