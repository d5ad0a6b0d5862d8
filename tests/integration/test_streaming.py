"""Answers stream: the library yields the text as the model writes it, and `rag query` prints it so."""

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the minimum password length for company accounts?"


def test_library_stream_yields_many_pieces_and_the_same_result(sample_app):
    stream = sample_app.query(QUESTION, retriever="basic", stream=True)
    pieces = list(stream)
    result = stream.result
    assert len(pieces) > 3 and "".join(pieces).strip() == result.answer
    assert result.finish_reason in ("stop", "length") and result.usage["completion_tokens"] >= len(pieces) - 1
    assert result.timings["generate"] > 0


def test_cli_query_prints_the_answer_before_it_is_finished(sample_app):
    """Under a pseudo-terminal the answer arrives in several reads, spread over time, before the sources."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "--storage-dir", str(sample_app.config.storage_dir),
                             "--llm-model", "smollm2-135m", "query", QUESTION], stdin=child, stdout=child,
                            stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "RAG_MAX_NEW_TOKENS": "96"})
    os.close(child)
    reads: list[tuple[float, str]] = []
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                reads.append((time.monotonic(), data))
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(timeout=60)
        os.close(main)
    text = "".join(d for _, d in reads)
    assert proc.returncode == 0 and "Sources:" in text, text[-500:]
    before = [(t, d) for t, d in reads if "Sources:" not in d and d.strip()]
    before = before[: next((i for i, (_, d) in enumerate(reads) if "Sources:" in d), len(reads))]
    assert len(before) >= 2, reads
    assert before[-1][0] - before[0][0] > 0.05  # pieces came over time, not in one write at the end
