"""`rag serve` as a user starts it: a child process on 127.0.0.1, waited for until /healthz answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300  # loads the embedder, every index and the model: slow on 2 shared cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(storage: Path, port: int, env: dict[str, str] | None = None, model: str = "smollm2-135m",
                 log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``(process, base URL)`` once the server answers /healthz; its output goes to ``log_path``."""
    log_path = log_path or storage.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "rag.cli", "--storage-dir", str(storage), "--llm-model", model,
               "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"rag serve exited {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise AssertionError(f"rag serve did not answer in {START_TIMEOUT_S}s: {log_path.read_text()[-2000:]}")


def handbook_storage(folder: Path) -> Path:
    """A storage folder under ``folder`` with a two-page handbook PDF indexed (real embedder)."""
    from pdfs import make_pdf

    from rag import RAG, Config

    make_pdf(folder / "docs" / "handbook.pdf", ["Passwords must be at least 14 characters long. Passwords are "
                                                "changed every 90 days.", "Employees get 12 paid sick days per year."])
    storage = folder / "storage"
    report = RAG(Config(storage_dir=storage, llm_model="smollm2-135m"), progress=False).ingest(folder / "docs",
                                                                                               progress=False)
    assert report.added == ["handbook.pdf"] and not report.failed
    return storage


def stop_server(process: subprocess.Popen, timeout_s: float = 60) -> int:
    """SIGTERM (the graceful stop), then SIGKILL if it hangs; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
