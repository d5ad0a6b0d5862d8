"""`rag config`, settings errors, help and output hygiene, run as a user would: from a subprocess."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["ingest", "query", "retrieve", "models", "eval", "judge", "leaderboard", "dashboard", "config",
            "sources", "reset", "chat"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "COLUMNS": "100", **extra}


def rag(*args, cwd, env=None, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env or clean_env(), **kwargs)


def test_config_shows_resolved_values_with_their_origin_as_toml_that_reads_back(tmp_path):
    (tmp_path / "rag.toml").write_text("top_k = 6\n")
    proc = rag("config", "--storage-dir", "idx", cwd=tmp_path, env=clean_env(RAG_WINDOW_SIZE="2"))
    assert proc.returncode == 0, proc.stderr
    shown = tomllib.loads(proc.stdout)
    assert (shown["top_k"], shown["window_size"], shown["storage_dir"]) == (6, 2, "idx")
    assert shown["llm_model"] == "qwen2.5-coder-1.5b"  # resolved, not null
    assert shown["database_url"].endswith("idx/evaluations.sqlite")
    assert "top_k = 6  # from rag.toml" in proc.stdout and "# from RAG_WINDOW_SIZE" in proc.stdout
    assert "# from argument" in proc.stdout.split("storage_dir = ")[1].splitlines()[0]
    (tmp_path / "shown.toml").write_text(proc.stdout)
    again = rag("--config", "shown.toml", "config", "--json", cwd=tmp_path)
    data = json.loads(again.stdout)
    assert (data["top_k"], data["window_size"], data["storage_dir"]) == (6, 2, "idx")
    assert not (tmp_path / "idx").exists()  # a read-only command creates nothing


def test_config_init_writes_a_commented_file_once(tmp_path):
    proc = rag("config", "init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "rag.toml").read_text()
    assert tomllib.loads(text) == {} and "# top_k = 4" in text and "# basic retriever: chunks retrieved" in text
    (tmp_path / "rag.toml").write_text(text.replace("# top_k = 4", "top_k = 8"))
    assert json.loads(rag("config", "--json", cwd=tmp_path).stdout)["top_k"] == 8
    proc = rag("config", "init", cwd=tmp_path)
    assert proc.returncode == 2 and "rag.toml exists" in proc.stderr and "--force" in proc.stderr
    assert "top_k = 8" in (tmp_path / "rag.toml").read_text()


def test_global_options_go_before_or_after_the_command(tmp_path):
    before = json.loads(rag("--storage-dir", "a", "--llm-model", "m1", "config", "--json", cwd=tmp_path).stdout)
    after = json.loads(rag("config", "--json", "--storage-dir", "a", "--llm-model", "m1", cwd=tmp_path).stdout)
    assert before == after and after["storage_dir"] == "a" and after["llm_model"] == "m1"
    # given before and not repeated after, the value stays
    mixed = json.loads(rag("--storage-dir", "b", "config", "--json", "--llm-model", "m2", cwd=tmp_path).stdout)
    assert (mixed["storage_dir"], mixed["llm_model"]) == ("b", "m2")


def test_misspelt_variable_is_one_warning_line_with_a_suggestion(tmp_path):
    proc = rag("config", "--json", cwd=tmp_path, env=clean_env(RAG_TOPK="3"))
    assert proc.returncode == 0
    assert proc.stderr.strip() == "warning: RAG_TOPK is not a setting (did you mean RAG_TOP_K?); ignored."


@pytest.mark.parametrize("env, expected", [
    ({"RAG_TOP_K": "-5"}, "error: invalid setting top_k=-5 (from RAG_TOP_K)"),
    ({"RAG_CHUNK_OVERLAP": "300"}, "chunk_overlap (300) must be smaller than chunk_size (256)"),
    ({"RAG_MERGE_RATIO": "7"}, "merge_ratio=7.0 (from RAG_MERGE_RATIO): it must be a number from 0 to 1"),
    ({"RAG_CHUNK_SIZES": "128,2048"}, "it must be chunk sizes from largest to smallest"),
    ({"RAG_STORAGE_DIR": "afile"}, "storage_dir='afile' (from RAG_STORAGE_DIR) is a file, not a folder"),
])
def test_bad_settings_are_one_line_and_exit_2_before_anything_loads(tmp_path, env, expected):
    (tmp_path / "afile").write_text("not a folder")
    proc = rag("retrieve", "anything", cwd=tmp_path, env=clean_env(**env), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr


def test_every_command_has_a_description_and_an_example(tmp_path):
    top = rag("--help", cwd=tmp_path)
    assert top.returncode == 0 and all(c in top.stdout for c in COMMANDS)
    for command in COMMANDS + ["models list", "models pull"]:
        proc = rag(*command.split(), "--help", cwd=tmp_path)
        assert proc.returncode == 0, command
        usage, _, rest = proc.stdout.partition("\n\n")
        assert usage.startswith(f"usage: rag {command}") and "example:\n  rag " in rest, (command, proc.stdout)
        assert "--storage-dir" in proc.stdout  # the global options are accepted here too
        assert max(len(line) for line in proc.stdout.splitlines()) <= 100, command
    assert rag("--version", cwd=tmp_path).stdout.startswith("rag-pdf ")


def test_output_piped_into_head_ends_quietly(tmp_path):
    for command in ("rag --help", "rag config", "rag models list"):
        proc = subprocess.run(f"{sys.executable} -m rag.cli {command.removeprefix('rag ')} | head -1",
                              shell=True, capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=120)
        assert proc.stdout.strip() and proc.stderr == "", (command, proc.stderr)


def test_read_only_commands_create_no_folder(tmp_path):
    missing = tmp_path / "typo"
    for args in (["sources"], ["retrieve", "q"], ["query", "q"], ["leaderboard"], ["config"], ["reset", "--yes"]):
        proc = rag("--storage-dir", str(missing), *args, cwd=tmp_path, timeout=120)
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert not missing.exists(), args
    proc = rag("--storage-dir", str(missing), "sources", cwd=tmp_path)
    assert proc.returncode == 2 and "No index in" in proc.stderr and "rag ingest" in proc.stderr
