"""`rag judge` on labelled rows, and failures that are counted and shown, never hidden behind exit 0."""

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADVERSARIAL = ROOT / "bench" / "judge_sets" / "groundedness_adversarial.jsonl"


def rag(*args, timeout=600, **kwargs):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kwargs)


def test_judge_scores_every_line_in_order_and_reports_agreement(tmp_path):
    out = tmp_path / "scores.jsonl"
    proc = rag("judge", "groundedness", str(ADVERSARIAL), "--judge", "lexical", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = ADVERSARIAL.read_text().splitlines()
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(scores) == len(lines) and all(0 <= s["score"] <= 1 and s["reason"] for s in scores)
    assert "judge lexical, groundedness" in proc.stdout
    assert f"n {len(lines)}" in proc.stdout and "AUC" in proc.stdout and "balanced accuracy" in proc.stdout

    proc = rag("judge", "groundedness", str(ADVERSARIAL), "--judge", "lexical", "--json")
    data = json.loads(proc.stdout)
    assert data["agreement"]["n"] == len(lines) and 0 <= data["agreement"]["auc"] <= 1
    assert len(data["scores"]) == len(lines)


def test_judge_names_the_malformed_line(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "q?", "context": "c", "label": 1}\n{"question": "q?", "label": 2}\n')
    proc = rag("judge", "context_relevance", str(rows), "--judge", "lexical")
    assert proc.returncode == 2
    assert f"{rows}, line 2: needs \"context\"" in proc.stderr and "Traceback" not in proc.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_one_line_for_query_and_a_failed_eval(sample_app, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    server = ["--storage-dir", str(sample_app.config.storage_dir), "--llm-provider", "openai_like",
              "--llm-base-url", url, "--llm-model", "m"]
    env = {**__import__("os").environ, "RAG_REQUEST_TIMEOUT": "5"}
    proc = rag(*server, "query", "How many sick days?", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: cannot reach the model server"), proc.stderr

    proc = rag(*server, "eval", "-q", "eval_questions/sample.jsonl", "--limit", "2", "-r", "basic",
               "--judge", "lexical", "--output", str(tmp_path / "out"), "--json", env=env)
    assert proc.returncode == 3, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["failed"] == 2 and "APIConnectionError" in data["failure"]
    [row] = data["leaderboard"]
    assert row["errors"] == 2 and row["questions"] == 2
    assert "error: 2 of 2 answers failed or were not scored; first: APIConnectionError" in proc.stderr


def test_leaderboard_of_a_missing_folder_creates_nothing(tmp_path):
    typo = tmp_path / "storgae"
    proc = rag("--storage-dir", str(typo), "leaderboard")
    assert proc.returncode == 2 and "No storage folder" in proc.stderr and not typo.exists()
