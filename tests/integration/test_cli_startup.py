"""`rag retrieve` and `rag query` do not import LangChain, which LlamaIndex's index loader would
otherwise pull in (about 2 s of start-up, bench/startup.py)."""

import os
import subprocess
import sys

CHILD = """
import sys
from rag.cli import main
code = main(sys.argv[1:])
print("LANGCHAIN" if "langchain_core" in sys.modules else "NO-LANGCHAIN", code)
"""


def test_retrieve_answers_without_importing_langchain(sample_app):
    env = {**os.environ, "RAG_STORAGE_DIR": str(sample_app.config.storage_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, "retrieve", "How many days of parental leave?", "-r", "basic"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "northwind_employee_handbook.pdf" in done.stdout  # it still retrieved
    assert done.stdout.strip().splitlines()[-1] == "NO-LANGCHAIN 0", done.stdout[-500:]
