"""Keep a SQLite Dagster instance's databases open while a run writes to them.

Dagster's SQLite storages open and close a connection for every write (``NullPool`` engines): an
execution stores ~40 events, each in the run's database and, for asset events, the index too,
~260 connections in all. Closing the last connection to a WAL database checkpoints it (fsyncs) and
the next one maps the WAL index again: on this machine's disk that is 5.8 ms per write, against
1.0 ms while another connection to the same file stays open, with the same ``synchronous=FULL``
durability (nothing is written differently, only the checkpoint waits for the last close). Under
load it was 2-3 s of every execution's Dagster overhead. So an execution holds one idle connection
to each database its run writes, and Dagster's own are never the last; other instances (Postgres)
are left as they are.

The CLI chooses its run's id before creating the run, so the hold also covers the run's creation
(Dagster writes one "planned" event per asset and check there: 0.33 s of the 0.42 s it took at
100k, unheld): ``create_shard`` opens the run's event log through Dagster's own storage first,
which creates it exactly as the run's first event would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

from dagster import DagsterInstance


def _database_files(instance: DagsterInstance, run_id: str) -> list[Path]:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from sqlalchemy.engine import make_url

    files = []
    run_storage = instance.run_storage
    if isinstance(run_storage, SqliteRunStorage):
        files.append(Path(str(make_url(run_storage._conn_string).database)))
    events = instance.event_log_storage
    if isinstance(events, SqliteEventLogStorage):
        files += [Path(events.path_for_shard(INDEX_SHARD_NAME)), Path(events.path_for_shard(run_id))]
    return [path for path in files if path.exists()]


@contextmanager
def held_connections(instance: DagsterInstance, run_id: str, *, create_shard: bool = False) -> Iterator[str]:
    """While inside, one idle connection stays open to each SQLite database of ``instance`` that
    run ``run_id`` writes (the run storage, the event index, the run's event log).

    ``create_shard``: the run does not exist yet; its event log is created first (Dagster's storage,
    its schema), and removed again on the way out if no run ``run_id`` was created inside (a refused
    execution leaves no file behind).
    """
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    events = instance.event_log_storage
    created = create_shard and isinstance(events, SqliteEventLogStorage)
    if created:
        with events.run_connection(run_id):
            pass
    try:
        with ExitStack() as stack:
            for path in _database_files(instance, run_id):
                connection = stack.enter_context(closing(sqlite3.connect(path, timeout=30)))
                # read once (maps the WAL index), then hold no statement open: no snapshot, no lock
                connection.execute("PRAGMA schema_version").fetchall()
            yield run_id
    finally:
        if created and instance.get_run_by_id(run_id) is None:
            shard = Path(events.path_for_shard(run_id))
            for path in (shard, shard.with_name(shard.name + "-wal"), shard.with_name(shard.name + "-shm")):
                path.unlink(missing_ok=True)
