#!/usr/bin/env python3
"""Remove outputs and execution counts from notebooks so that diffs stay clean.

    python scripts/strip_notebooks.py notebooks/*.ipynb          # rewrite in place
    python scripts/strip_notebooks.py --check notebooks/*.ipynb  # exit 1 if any has outputs

Standard library only, so it also runs as a git pre-commit hook (see scripts/pre-commit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def strip(notebook: dict) -> bool:
    """Strip in place; True if anything changed."""
    changed = False
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell["outputs"] = []
        cell["execution_count"] = None
        for key in ("execution", "collapsed", "scrolled"):
            if cell.get("metadata", {}).pop(key, None) is not None:
                changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report notebooks with outputs, change nothing")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if strip(notebook):
            dirty.append(path)
            if not args.check:
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for path in dirty:
        print(f"{path}: {'has outputs' if args.check else 'stripped'}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
