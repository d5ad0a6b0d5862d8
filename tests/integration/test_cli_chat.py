"""`rag chat` under a pseudo-terminal (pexpect), with the tiny SmolLM2 model: the loop, its commands,
follow-ups condensed from the history, and readline editing."""

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pdfs import make_pdf

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "you> "


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    make_pdf(docs / "handbook.pdf", ["Passwords must be at least 14 characters long. Passwords are changed "
                                     "every 90 days.", "Employees get 12 paid sick days per year."])
    storage = tmp_path_factory.mktemp("chat") / "storage"
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "--storage-dir", str(storage), "ingest", str(docs),
                           "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return storage


def spawn(storage, *args):
    env = {**os.environ, "RAG_LLM_MODEL": "smollm2-135m", "RAG_MAX_NEW_TOKENS": "32", "OMP_NUM_THREADS": "1",
           "TERM": "xterm"}
    return pexpect.spawn(sys.executable, ["-m", "rag.cli", "--storage-dir", str(storage), "chat", *args],
                         cwd=str(ROOT), env=env, encoding="utf-8", timeout=120, dimensions=(40, 200))


def test_chat_answers_follow_ups_switches_retrievers_and_quits(storage):
    child = spawn(storage)
    try:
        child.expect(r"Chat over .* with basic\[")
        child.expect(PROMPT)
        child.sendline("/help")
        child.expect("/retriever")
        child.expect(PROMPT)
        child.sendline("/sources")
        child.expect("No answer yet")
        child.expect(PROMPT)

        child.sendline("How long must passwords be?")
        child.expect("Sources:")
        child.expect(r"\[1\] handbook\.pdf pp?\. \d")
        child.expect(PROMPT)
        child.sendline("/sources 1")
        child.expect(r"\[1\] handbook\.pdf pp?\. \d")
        child.expect("Passwords|paid sick days")  # the source's own text
        child.expect(PROMPT)

        child.sendline("/retriever sentence_window:window_size=1")
        child.expect(r"Retriever: sentence_window\[window_size=1,")
        child.expect(PROMPT)
        child.sendline("/retriever nope")
        child.expect("error: Unknown retriever 'nope'")
        child.expect(PROMPT)

        child.sendline("And how often are they changed?")  # a follow-up: condensed from the history first
        child.expect(r"\(searching for: [^\r\n]+\)")
        child.expect("Sources:")
        child.expect(PROMPT)
        child.sendline("/history")
        child.expect(r"1\. How long must passwords be\?")
        child.expect(r"2\. And how often are they changed\?")
        child.expect(PROMPT)
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_chat_line_editing_and_ctrl_d(storage):
    child = spawn(storage, "-r", "basic")
    try:
        child.expect(PROMPT)
        child.send("paid sick days?")
        child.send("\x01")  # Ctrl-A: readline moves to the start of the line
        child.send("How many ")
        child.send("\r")
        child.expect("Sources:")
        child.expect(PROMPT)
        child.sendline("/history")
        child.expect(r"1\. How many paid sick days\?")  # the edited line is what was asked
        child.expect(PROMPT)
        child.sendeof()  # Ctrl-D leaves
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
