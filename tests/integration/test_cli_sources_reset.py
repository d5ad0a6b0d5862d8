"""`rag sources` and `rag reset` on a real ingested folder, from a subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pdfs import make_pdf

ROOT = Path(__file__).resolve().parents[2]


def rag(*args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    make_pdf(docs / "alpha report.pdf", ["Alpha sales rose by 12 percent in March.", "Costs fell in April."])
    make_pdf(docs / "beta.pdf", ["Beta has one page about the office move to Leeds."])
    storage = tmp_path_factory.mktemp("ingested") / "storage"
    proc = rag("--storage-dir", str(storage), "ingest", str(docs), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Indexed 2 PDF(s), 3 pages" in proc.stdout and "index" in proc.stdout and "vectors" in proc.stdout
    again = rag("--storage-dir", str(storage), "ingest", str(docs), "--quiet")
    assert again.returncode == 0 and again.stdout.strip() == "Nothing changed: 2 PDF(s) already indexed."
    return storage


@pytest.fixture
def indexed(ingested, tmp_path):
    """A copy of one real ingest per test (the index holds only relative paths)."""
    return Path(shutil.copytree(ingested, tmp_path / "storage"))


def test_sources_lists_files_pages_and_node_counts(indexed):
    manifest = json.loads((indexed / "manifest.json").read_text())
    proc = rag("sources", "--storage-dir", str(indexed))
    assert proc.returncode == 0, proc.stderr
    assert "2 PDF(s), 3 pages" in proc.stdout
    lines = proc.stdout.splitlines()
    assert any(l.startswith("alpha report.pdf") and " 2 " in l for l in lines)
    assert any(l.startswith("beta.pdf") and " 1 " in l for l in lines)
    for entry in manifest["indexes"].values():  # every index with its own node and vector counts
        row = next(l for l in lines if l.startswith(entry["kind"] + " "))
        assert row.split()[-2:] == [f"{entry['nodes']:,}", f"{entry['vectors']:,}"], row
    assert max(len(l) for l in lines if str(indexed.parent) not in l) <= 100
    data = json.loads(rag("sources", "--json", "--storage-dir", str(indexed)).stdout)
    assert {f["name"]: f["pages"] for f in data["files"]} == {"alpha report.pdf": 2, "beta.pdf": 1}
    assert sorted(i["kind"] for i in data["indexes"]) == sorted(e["kind"] for e in manifest["indexes"].values())


def test_reset_needs_a_yes_and_deletes_only_what_the_store_wrote(indexed):
    (indexed / "my notes.txt").write_text("mine")
    (indexed / "cache" / "mine.txt").write_text("also mine")  # inside a store folder, still not the store's
    (indexed / "evaluations.sqlite").write_text("runs")  # stands in for evaluation runs
    proc = rag("--storage-dir", str(indexed), "reset", stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr and (indexed / "manifest.json").exists()

    proc = rag("reset", "--yes", "--storage-dir", str(indexed))
    assert proc.returncode == 0, proc.stderr
    assert "manifest.json, cache/, indexes/" in proc.stdout
    assert "Kept the evaluation runs" in proc.stdout and "Kept 2 file(s) that are not the store's: cache/mine.txt, " \
        "my notes.txt." in proc.stdout
    assert sorted(str(p.relative_to(indexed)) for p in indexed.rglob("*") if p.is_file() and p.name != ".lock") \
        == ["cache/mine.txt", "evaluations.sqlite", "my notes.txt"]
    assert rag("sources", "--storage-dir", str(indexed)).returncode == 2  # no index any more

    proc = rag("reset", "--yes", "--all", "--storage-dir", str(indexed))
    assert proc.returncode == 0 and "evaluations.sqlite" in proc.stdout
    assert sorted(p.name for p in indexed.iterdir() if p.name != ".lock") == ["cache", "my notes.txt"]
    assert "Nothing to reset" in rag("reset", "--yes", "--storage-dir", str(indexed)).stdout


def test_reset_asks_on_a_terminal_and_no_keeps_everything(indexed):
    before = sorted(p.name for p in indexed.rglob("*"))
    child = pexpect.spawn(sys.executable, ["-m", "rag.cli", "--storage-dir", str(indexed), "reset"], cwd=str(ROOT),
                          encoding="utf-8", timeout=120)
    child.expect(r"Delete manifest\.json, cache/, indexes/ in .*\? \[y/N\] ")
    child.sendline("n")
    child.expect("Nothing deleted.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and sorted(p.name for p in indexed.rglob("*")) == before

    child = pexpect.spawn(sys.executable, ["-m", "rag.cli", "--storage-dir", str(indexed), "reset", "--all"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120)
    child.expect(r"\[y/N\] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and not indexed.exists()  # nothing of anyone's was left: the folder goes too
