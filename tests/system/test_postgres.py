"""The PostgreSQL backend, for real: a throw-away PostgreSQL server started from the Debian
binaries on 127.0.0.1, a two-version evaluation recorded in it, and the records and scores
read back both with plain SQL and through ``rag.evaluation.leaderboard``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from pg_server import running_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval_questions" / "sample.jsonl"
RETRIEVERS = ["basic", "sentence_window:window_size=1"]
FEEDBACK = ("Context Relevance", "Groundedness", "Answer Relevance")
DBNAME = "rag_evals"


@pytest.fixture(scope="module")
def postgres():
    """A running PostgreSQL server with an empty database ``rag_evals``; stopped afterwards."""
    for server in running_server():
        server.create_database(DBNAME)
        yield server


def test_server_listens_on_loopback_only(postgres):
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW listen_addresses")
            assert cursor.fetchone()[0] == "127.0.0.1"
            cursor.execute("SELECT inet_server_addr()")
            assert str(cursor.fetchone()[0]) == "127.0.0.1"
    finally:
        connection.close()


def test_plain_postgresql_url_opens_a_session(postgres):
    """``postgresql://...`` as the README writes it, with the driver the project installs."""
    import sqlalchemy

    from rag import Config
    from rag.evaluation.trulens.session import open_session

    config = Config(database_url=postgres.url(DBNAME))
    try:
        session = open_session(config)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{config.database_url} cannot be opened: {exc}. SQLAlchemy {sqlalchemy.__version__} "
                    f"maps postgresql:// to the driver {sqlalchemy.engine.make_url(config.database_url).get_dialect().driver!r}, "
                    "which is not installed.")
    assert session.connector.db.engine.url.host == "127.0.0.1"


# ---------------------------------------------------------------- the evaluation, recorded in PostgreSQL

@pytest.fixture(scope="module")
def evaluated(postgres, sample_app, tmp_path_factory):
    """One question through two retriever versions, recorded and judged into PostgreSQL."""
    from rag import RAG
    from rag.evaluation.questions import load_questions

    out = tmp_path_factory.mktemp("pg_eval")
    config = sample_app.config.replace(max_new_tokens=32, database_url=postgres.url(DBNAME))
    app = RAG(config)
    cwd = os.getcwd()
    os.chdir(out)  # TruLens' implicit default.sqlite would appear here
    try:
        started = time.perf_counter()
        results = app.evaluate(load_questions(SAMPLE)[:1], retrievers=RETRIEVERS, judge="lexical", progress=False,
                               output_dir=out / "results")
        results.elapsed_s = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    assert not (out / "default.sqlite").exists()
    return app, results


def _query(postgres, sql: str, *params):
    return postgres.query(DBNAME, sql, *params)


def _attributes(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value)


def test_evaluation_rows_come_back(evaluated):
    app, results = evaluated
    rows = results.rows
    assert len(rows) == 2 and rows["error"].isna().all(), rows[["version", "error"]]
    assert set(rows["retriever"]) == {app.spec(r).name for r in RETRIEVERS}
    for column in ("context_relevance", "groundedness", "answer_relevance"):
        assert rows[column].astype(float).between(0, 1).all(), (column, rows[column].tolist())
    assert results.database_url == app.config.database_url  # no password to hide


def test_records_and_all_three_scores_are_in_postgres(postgres, evaluated):
    """Read straight from PostgreSQL with SQL (psycopg2), not through TruLens or our code."""
    app, results = evaluated
    versions = set(results.rows["version"])
    tables = {t for (t,) in _query(postgres, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"trulens_apps", "trulens_events", "trulens_feedback_defs"} <= tables, sorted(tables)

    apps = _query(postgres, "SELECT app_name, app_version FROM trulens_apps")
    assert sorted(apps) == sorted(("rag", v) for v in versions)

    span_type = "record_attributes::jsonb ->> 'ai.observability.span_type'"
    roots = _query(postgres, f"""
        SELECT record_attributes::jsonb ->> 'ai.observability.record_id',
               record_attributes::jsonb ->> 'ai.observability.app_version'
        FROM trulens_events WHERE {span_type} = 'record_root'""")
    assert sorted(roots) == sorted(zip(results.rows["record_id"], results.rows["version"])), roots

    evals = _query(postgres, f"""
        SELECT record_attributes::jsonb ->> 'ai.observability.eval.target_record_id',
               record_attributes::jsonb ->> 'ai.observability.eval_root.metric_name',
               record_attributes::jsonb ->> 'ai.observability.eval_root.score'
        FROM trulens_events WHERE {span_type} = 'eval_root'""")
    triad = [(record_id, metric, score) for record_id, metric, score in evals if metric in FEEDBACK]
    scores = {(record_id, metric): float(score) for record_id, metric, score in triad}
    assert len(scores) == len(triad) == 2 * len(FEEDBACK), evals
    # The reference metrics (retrieval, correctness, contexts) are stored with the same records.
    stored = {(record_id, metric) for record_id, metric, _ in evals if metric not in FEEDBACK}
    assert {record_id for record_id, _ in stored} == set(results.rows["record_id"]), evals
    columns = {"Context Relevance": "context_relevance", "Groundedness": "groundedness",
               "Answer Relevance": "answer_relevance"}
    for _, row in results.rows.iterrows():
        for metric in FEEDBACK:
            score = scores[(row["record_id"], metric)]
            assert 0.0 <= score <= 1.0, (row["version"], metric, score)
            assert score == pytest.approx(float(row[columns[metric]])), (row["version"], metric)


def test_leaderboard_reads_both_versions_back(evaluated):
    from rag.evaluation import leaderboard

    app, results = evaluated
    board = leaderboard(app.config)
    assert len(board) == 2 and list(board["rank"]) == [1, 2]
    assert set(board["version"]) == set(results.rows["version"])
    assert set(board["retriever"]) == {app.spec(r).name for r in RETRIEVERS}
    assert set(board["judge"]) == {"lexical"} and list(board["records"]) == [1, 1]
    for column in ("context_relevance", "groundedness", "answer_relevance", "triad"):
        assert board[column].between(0, 1).all(), (column, board[column].tolist())
    assert board["triad"].is_monotonic_decreasing
