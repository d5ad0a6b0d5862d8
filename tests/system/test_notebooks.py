"""The notebooks in notebooks/ run top to bottom, offline, and are committed without outputs.

Each notebook is executed with nbclient in a fresh Jupyter kernel of this interpreter, from
notebooks/ (their working directory in Jupyter), with every network setting removed. They share
one temporary storage folder (index and TruLens database), in reading order, so the PDFs are
ingested once and notebook 5 finds the runs of notebooks 1-4. Any cell error fails the test.

Executed copies are written to test-artifacts/notebooks/ for inspection.

Environment knobs: RAG_NOTEBOOK_QUESTIONS (questions per evaluation, the notebooks' default is 2),
RAG_NOTEBOOK_CELL_TIMEOUT (seconds per cell, default 1200), RAG_MAX_NEW_TOKENS (answer length;
CI keeps answers short, see NOTEBOOK_ENV).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
CELL_TIMEOUT = int(os.environ.get("RAG_NOTEBOOK_CELL_TIMEOUT", 1200))

# Anything that would send a notebook to a server: never in tests (the judge cells of notebook 2
# then print that they were skipped).
NETWORK_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_CONFIG", "RAG_LLM_PROVIDER", "RAG_LLM_MODEL",
               "RAG_LLM_BASE_URL", "RAG_LLM_API_KEY", "RAG_JUDGE", "RAG_JUDGE_MODEL", "RAG_JUDGE_BASE_URL",
               "RAG_JUDGE_API_KEY", "RAG_DATABASE_URL", "RAG_EMBED_MODEL", "RAG_RERANKER")
NOTEBOOK_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel's debugger warning about frozen modules
}
DEFAULTS = {
    # The bundled 135M model writes ~1 token per 0.1-2 s on a busy CPU; short answers keep the
    # notebooks' ~15 generated answers within minutes. Retrieval and judging are unaffected.
    "RAG_MAX_NEW_TOKENS": "64",
    # Plumbing, not answer quality: the 135M generator keeps the notebooks within minutes.
    "RAG_LLM_MODEL": "smollm2-135m",
    "RAG_JUDGE": "lexical",  # the default judge's local-LLM checks are tested in tests/integration
}


def test_notebooks_are_present_and_numbered():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5, names
    assert all(name[:2].isdigit() and name[2] == "_" for name in names), names
    assert len({name[:2] for name in names}) == len(names), f"two notebooks share a number: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_and_follows_the_conventions(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        "a notebook starts with a title and what it shows"
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    for name in ("DOCS = Path(", "N_QUESTIONS = ", "RAG_STORAGE_DIR", "RAG("):
        assert name in setup, f"the first code cell defines the settings ({name!r} missing)"


def test_committed_notebooks_have_no_outputs():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "strip_notebooks.py"), "--check",
                           *map(str, NOTEBOOKS)], capture_output=True, text=True)
    assert done.returncode == 0, (f"{done.stdout}{done.stderr}Strip them with: "
                                  "python scripts/strip_notebooks.py notebooks/*.ipynb")


@pytest.fixture(scope="session")
def notebook_storage(tmp_path_factory) -> Path:
    """One storage folder for all notebooks of the session: ingest once, notebook 5 sees 1-4."""
    return tmp_path_factory.mktemp("notebook_storage")


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The ``python3`` kernel, run by this interpreter.

    jupyter_client starts a kernelspec whose argv begins with ``python`` with ``sys.executable``;
    ipykernel provides that spec itself. Only if none is found is one installed into this prefix.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True)
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, notebook_storage, kernel_name, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for name in NETWORK_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in NOTEBOOK_ENV.items():
        monkeypatch.setenv(name, value)
    for name, value in DEFAULTS.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    monkeypatch.setenv("RAG_STORAGE_DIR", str(notebook_storage))  # the kernel inherits this environment

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT, allow_errors=False,
                            record_timing=True, resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, ARTIFACTS / path.name)
    print(f"{path.name}: {time.perf_counter() - started:.0f} s")

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if "Figure(" in path.read_text() or "Image(" in path.read_text():
        assert images, f"{path.name}: no plot was displayed"
