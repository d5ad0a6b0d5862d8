"""Layout rules that keep the code base easy to change: checked on the source, not by convention."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rag"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_only_the_trulens_subpackage_imports_trulens():
    offenders = [name for name, path in modules().items()
                 if not name.startswith("rag.evaluation.trulens")
                 and any(m == "trulens" or m.startswith("trulens.") for m in imports(path, top_level_only=False))]
    assert not offenders, offenders


def test_no_import_cycles_between_modules():
    mods = modules()
    graph = {name: {m for m in imports(path, top_level_only=False) if m in mods and m != name}
             for name, path in mods.items()}
    # A package __init__ is imported by its submodules' import anyway: edges to a parent are fine.
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle.extend(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
                return True
            if dep not in state and visit(dep, stack + [dep]):
                return True
        state[node] = 2
        return False

    for name in graph:
        if name not in state and visit(name, [name]):
            break
    assert not cycle, " -> ".join(cycle)


# README, "Architecture": each part of rag/ imports only parts of its own layer or below.
LAYERS = [
    {"config", "types", "errors", "registry", "value_parsers", "progress", "durable", "threads", "text_units",
     "executors"},
    {"embedding"}, {"generation"}, {"retrieval"}, {"stores"}, {"ingest"}, {"evaluation"},
    {"app", "chat", "models", "serve", "cli", "cli_format", "rag"},
]


def test_imports_point_down_the_layers():
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    part = lambda name: name.split(".")[1] if "." in name else name  # noqa: E731
    mods = modules()
    upward = sorted(f"{name} -> {dep}" for name, path in mods.items()
                    for dep in imports(path, top_level_only=False) if dep in mods
                    and layer[part(dep)] > layer[part(name)])
    assert not upward, upward


def test_no_process_wide_warning_filters_in_the_package():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert 'filterwarnings("ignore")' not in text, path


def test_cli_start_up_imports_nothing_heavy():
    code = ("import sys, rag.cli; rag.cli._parser(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'llama_index', 'trulens', 'xllamacpp', "
            "'transformers', 'sentence_transformers', 'ray')]; print(bad[:5]); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_module_uses_another_modules_private_names():
    """``from rag.x import _helper`` or ``x._helper`` where ``x`` is a rag module imported by name: a private
    name is its module's to change, so another module reaching it is a hidden dependency."""
    mods = modules()
    offenders = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> rag module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag") and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in mods:
                        aliases[alias.asname or alias.name] = target
                    elif alias.name.startswith("_") and not alias.name.startswith("__") and node.module != name:
                        offenders.append(f"{name} imports {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in mods and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__") and aliases[node.value.id] != name:
                offenders.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    assert not offenders, sorted(set(offenders))
