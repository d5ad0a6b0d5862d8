"""`rag dashboard` from a subprocess: it serves, a SIGTERM stops its Streamlit child, and a port
that another program serves is refused in one line."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240  # Streamlit + TruLens imports on 2 shared cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _rag(tmp_path: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "RAG_STORAGE_DIR": str(tmp_path / "storage"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kwargs)


def test_sigterm_stops_the_dashboard_child(tmp_path):
    (tmp_path / "storage").mkdir()
    port = _free_port()
    cli = _rag(tmp_path, "dashboard", "--port", str(port))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"http://127.0.0.1:{port}/_stcore/health"):
            assert cli.poll() is None, cli.stderr.read()
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(1)
        cli.send_signal(signal.SIGTERM)
        cli.wait(timeout=60)
        assert cli.returncode == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while _answers(f"http://127.0.0.1:{port}/_stcore/health"):
            assert time.monotonic() < deadline, "the Streamlit child still serves after SIGTERM"
            time.sleep(1)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)


def test_a_port_served_by_another_program_is_refused_in_one_line(tmp_path):
    (tmp_path / "storage").mkdir()
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cli = _rag(tmp_path, "dashboard", "--port", str(server.server_port))
        out, err = cli.communicate(timeout=180)
    finally:
        server.shutdown()
    assert cli.returncode == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and f"Port {server.server_port}" in lines[0] and "in use" in lines[0], err
    assert "Traceback" not in err and "TruLens dashboard:" not in out
