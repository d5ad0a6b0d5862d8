import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # test helpers: pdfs, fake_openai
sys.path.insert(0, str(Path(__file__).parent / "unit"))  # unit-tier fakes

# Plumbing tests run the 135M model (fast); answer quality is measured by bench/, not by tests.
TEST_GENERATOR = "smollm2-135m"
TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    """Each test's tier marker comes from its folder: tests/unit, tests/integration, tests/system."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_pdfs(tmp_path_factory) -> Path:
    """A copy of the sample PDFs alone (the Markdown sources stay behind)."""
    target = tmp_path_factory.mktemp("sample_pdfs")
    for pdf in (ROOT / "data").glob("*.pdf"):
        shutil.copy(pdf, target / pdf.name)
    return target


@pytest.fixture(scope="session")
def sample_app(tmp_path_factory, sample_pdfs):
    """The sample PDFs ingested once for the whole session, with the default local models."""
    from rag import RAG, Config

    app = RAG(Config(storage_dir=tmp_path_factory.mktemp("storage"), llm_model=TEST_GENERATOR))
    report = app.ingest(sample_pdfs, progress=False)
    assert not report.failed
    return app


@pytest.fixture(scope="session")
def sample_questions(root):
    import json

    return [json.loads(line) for line in (root / "eval_questions" / "sample.jsonl").read_text().splitlines() if line]
