"""A model server that refuses the model, and a database that is down: one line each, exit 2."""

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pdfs import make_pdf

ROOT = Path(__file__).resolve().parents[2]


def rag(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


class NoSuchModel(BaseHTTPRequestHandler):
    """Answers every request as OpenAI does for an unknown model."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": {"message": "The model `gpt-nope` does not exist", "type": "invalid_request_error",
                                     "code": "model_not_found"}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def refusing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoSuchModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_a_wrong_model_name_is_one_line_naming_the_setting(tmp_path, refusing_server):
    make_pdf(tmp_path / "docs" / "a.pdf", ["The office moved to Leeds in May."])
    storage = str(tmp_path / "storage")
    assert rag("--storage-dir", storage, "ingest", str(tmp_path / "docs"), "--quiet").returncode == 0
    proc = rag("--storage-dir", storage, "query", "Where is the office?", "--llm-provider", "openai_like",
               "--llm-base-url", refusing_server, "--llm-model", "gpt-nope", env={"RAG_REQUEST_TIMEOUT": "10"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not know that model" in lines[-1] and "RAG_LLM_MODEL" in lines[-1], lines


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = rag("--storage-dir", str(tmp_path / "s"), "leaderboard",
               env={"RAG_DATABASE_URL": f"postgresql://me:hunter2@127.0.0.1:{port}/db"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot open the evaluation database: check RAG_DATABASE_URL"), proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout and len(proc.stderr.strip().splitlines()) == 1
