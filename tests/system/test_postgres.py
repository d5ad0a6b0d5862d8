"""The PostgreSQL backend, for real: a throw-away PostgreSQL server started from the Debian
binaries on 127.0.0.1, a two-version evaluation recorded in it, and the records and scores
read back both with plain SQL and through ``rag.evaluation.leaderboard``."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval_questions" / "sample.jsonl"
RETRIEVERS = ["basic", "sentence_window:window_size=1"]
FEEDBACK = ("Context Relevance", "Groundedness", "Answer Relevance")
DBNAME = "rag_evals"


# ---------------------------------------------------------------- a throw-away PostgreSQL server

def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (or those on PATH)."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        folder = Path(initdb).parent
        try:
            version = float(folder.parent.name)
        except ValueError:
            version = 0.0
        if (folder / "pg_ctl").exists():
            candidates.append((version, folder))
    if candidates:
        return max(candidates)[1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temporary folder, TCP on 127.0.0.1 only.

    initdb refuses to run as root, so as root the server runs as the ``postgres`` system
    user (``runuser``), owning the temporary folder.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700 and the postgres user
        # could not reach the data folder.
        self.folder = Path(tempfile.mkdtemp(prefix="rag-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.as_other_user = os.geteuid() == 0
        if self.as_other_user:
            import pwd

            if shutil.which("runuser") is None:
                pytest.skip("running as root, and runuser is missing to start PostgreSQL as the postgres user")
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root, and there is no 'postgres' system user to run PostgreSQL as")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)

    def run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / tool), *args]
        if self.as_other_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.server_log()}")
        return result

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start",
                 timeout=180)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                                connect_timeout=10)


@pytest.fixture(scope="module")
def postgres():
    """A running PostgreSQL server with an empty database ``rag_evals``; stopped afterwards."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
                    "or on PATH: install the Debian package postgresql (scripts/setup.sh --test)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        connection = server.connect()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DBNAME}")
        connection.close()
        yield server
    finally:
        server.stop()


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
    connection = postgres.connect(DBNAME)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


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
    scores = {(record_id, metric): float(score) for record_id, metric, score in evals}
    assert len(scores) == len(evals) == 2 * len(FEEDBACK), evals
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
