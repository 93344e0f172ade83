"""A real PostgreSQL server on loopback for tests, started from the installed binaries.

Debian's ``postgresql`` package (what ``.ci/run`` installs) puts ``initdb`` and ``pg_ctl`` under
``/usr/lib/postgresql/<version>/bin``, off the PATH; the server refuses to run as root, so under
root (CI) it runs as ``nobody``. No system service is used: each session gets its own data folder,
port and password, and each test its own database.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cluster_pipeline_tests.s3_server import free_port

USER = "dagster"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """SQLAlchemy's URL, naming the driver dagster-postgres installs (as deploy/'s files do)."""
        return "postgresql+psycopg2" + self.libpq_url(database)[len("postgresql") :]

    def libpq_url(self, database: str) -> str:
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.libpq_url("postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on the PATH, from ``pg_config``, or Debian's."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb on the PATH, from pg_config or in /usr/lib/postgresql/*/bin); "
        "install Debian's `postgresql` package, as .ci/run does."
    )


def _server_user() -> str | None:
    """``nobody`` when running as root (PostgreSQL refuses root), else None (this user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        raise PostgresUnavailable("Running as root and there is no 'nobody' user to run PostgreSQL as.") from None
    return "nobody"


def _run(command: list[str], user: str | None, **options) -> subprocess.CompletedProcess:  # noqa: ANN003
    done = subprocess.run(command, user=user, capture_output=True, text=True, **options)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{Path(command[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb into a fresh folder, start on a free loopback port with a password, stop and delete at exit."""
    bindir = find_bindir()
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="cluster-pipeline-pg-"))
    data = folder / "data"
    password = secrets.token_urlsafe(16)
    (folder / "pwfile").write_text(password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        os.chown(folder / "pwfile", entry.pw_uid, entry.pw_gid)
    port = free_port()
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={folder / 'pwfile'}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            user,
            cwd=folder,
        )
        # Durability off: a test server, thrown away at the end. No Unix socket: loopback TCP only.
        options = f"-h 127.0.0.1 -p {port} -k '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start"],
            user,
            cwd=folder,
            timeout=60,
        )
        started = True
        server = PostgresServer("127.0.0.1", port, USER, password)
        _wait_until_accepting(server)
        yield server
    finally:
        if started:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                user=user,
                capture_output=True,
                cwd=folder,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_accepting(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.libpq_url("postgres")).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL did not accept connections: {error}") from None
            time.sleep(0.2)
