"""Where the lake's bytes live: a local folder or an S3 bucket, behind one small interface.

Both backends keep two promises: ``write_new`` is atomic and never overwrites (a reader sees the
whole object or nothing; a second write of the key fails with AlreadyExistsError — local: a temp
file ``os.link``-ed into place, which refuses an existing name; S3: ``PutObject`` with
``If-None-Match: *``), and ``write_replace`` is atomic too (temp file + ``os.replace`` / one
``PutObject``), for the few mutable objects (configurations, collection schemas).

A local write that fails — no space left on device, permission denied, a read-only file system — raises
StorageError naming that cause and the folder, with its temp file removed: nothing half-written is
left, and nothing already there changes, so every listing and read goes on working.

``parquet_source`` hands over a whole object (small files: results, tombstones — one request each),
``parquet_stream`` a seekable file that reads only the byte ranges asked for (collection parts, which
can be larger than memory: a reader that projects columns and iterates batches holds one buffer).
``arrow_file`` opens an Arrow IPC file (a part's vectors): mapped into memory on a local lake, so its
record batches are views of the page cache, never copies; read batch by batch by byte range on S3.
"""

from __future__ import annotations

import errno
import fcntl
import io
import mmap
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, NotFoundError, StorageError

Tabular: TypeAlias = pa.Table | pa.RecordBatchReader
"""What a Parquet write takes: a whole table, or a stream of record batches (written one at a time)."""


class Storage(Protocol):
    """Key/value object storage with atomic create-only writes. Keys use '/' separators."""

    def read_bytes(self, key: str) -> bytes: ...
    def write_new(self, key: str, data: bytes) -> None: ...
    def write_replace(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def list_children(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str) -> str: ...
    def parquet_source(self, key: str) -> Any: ...
    def parquet_stream(self, key: str) -> Any: ...
    def write_parquet_new(self, key: str, table: Tabular, **options: Any) -> None: ...
    def write_parquet_replace(self, key: str, table: Tabular, **options: Any) -> None: ...
    def write_arrow_new(self, key: str, table: pa.Table, batch_rows: int) -> None: ...
    def arrow_file(self, key: str) -> ArrowFile: ...


@dataclass
class ArrowFile:
    """An Arrow IPC file open for reading: its ``reader``, and on a local lake the ``mapping`` its
    record batches are views of (``base``: the mapping's address)."""

    reader: ipc.RecordBatchFileReader
    mapping: mmap.mmap | None = None
    base: int = 0

    def release(self, buffer: pa.Buffer) -> None:
        """Unmap the pages under ``buffer`` from this process once they are read: they stay in the page
        cache (a later read maps them again, without I/O), but the process's resident memory holds one
        batch of a mapped part, not the whole part."""
        if self.mapping is None:
            return
        start = (buffer.address - self.base) // mmap.PAGESIZE * mmap.PAGESIZE
        end = min(len(self.mapping), buffer.address - self.base + buffer.size)
        if end > start:
            self.mapping.madvise(mmap.MADV_DONTNEED, start, end - start)


def arrow_bytes(table: pa.Table, batch_rows: int) -> bytes:
    """``table`` as an uncompressed Arrow IPC file (Feather v2) of record batches of ``batch_rows`` rows."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return sink.getvalue().to_pybytes()


def write_parquet(data: Tabular, sink: Any, **options: Any) -> None:
    """``data`` as Parquet into ``sink`` (zstd unless told otherwise). A ``RecordBatchReader`` is written
    a batch (a row group) at a time, so only one batch is ever held: a ten-million-document execution's
    assignments are built and written in slices, not as one table of ten million strings."""
    options.setdefault("compression", "zstd")
    if isinstance(data, pa.Table):
        pq.write_table(data, sink, **options)
        return
    with pq.ParquetWriter(sink, data.schema, **options) as writer:
        for batch in data:
            writer.write_batch(batch)


def parquet_bytes(data: Tabular, **options: Any) -> bytes:
    """Serialise ``data`` to Parquet in memory (zstd unless told otherwise)."""
    sink = pa.BufferOutputStream()
    write_parquet(data, sink, **options)
    return sink.getvalue().to_pybytes()


FILE_MODE = 0o644
# what to do about the usual causes of a failed write (any other: its own words)
_WRITE_FIXES = {
    errno.ENOSPC: "free space on that file system, or choose a data root with room (--root, CLUSTER_PIPELINE_ROOT)",
    errno.EDQUOT: "free space within your disk quota, or choose a data root with room (--root, CLUSTER_PIPELINE_ROOT)",
    errno.EACCES: "let this user write there, or choose a data root it may write to (--root, CLUSTER_PIPELINE_ROOT)",
    errno.EPERM: "let this user write there, or choose a data root it may write to (--root, CLUSTER_PIPELINE_ROOT)",
    errno.EROFS: "remount it read-write, or choose a data root on a writable file system (--root, CLUSTER_PIPELINE_ROOT)",
}


def write_failure(error: OSError, folder: Path) -> StorageError:
    """The StorageError of a write into ``folder`` that failed with ``error``: its cause in plain words."""
    cause = os.strerror(error.errno) if error.errno else str(error)
    fix = _WRITE_FIXES.get(error.errno or 0, "fix that and run again")
    return StorageError(f"Cannot write to {folder}: {cause}; nothing was written there. To go on, {fix}.")


class LocalStorage:
    """A folder on disk. The embedded default: no server, nothing to configure."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def path(self, key: str) -> Path:
        """The file behind ``key``; keys are built from validated ids, this re-checks containment."""
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ClusterPipelineError(f"Refusing storage key outside the data root: {key!r}")
        return path

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"No object at {self.uri(key)}") from None

    @contextmanager
    def _temp_beside(self, target: Path) -> Iterator[str]:
        """A temp file in ``target``'s folder, removed unless moved into place (and the folder with it if
        that leaves it empty); an OSError on the way (the folder, the temp file, its bytes, the move)
        becomes StorageError."""
        name = None
        try:
            name = _new_temp_file(target)
            yield name
        except OSError as error:
            raise write_failure(error, target.parent) from None
        finally:
            if name is not None:
                Path(name).unlink(missing_ok=True)
            if not target.exists():
                prune_empty(target.parent, self.root)

    def _link_new(self, tmp: str, target: Path) -> None:
        try:
            os.link(tmp, target)  # atomic and refuses an existing name: never overwrites
        except FileExistsError:
            raise AlreadyExistsError(f"{target} exists already and is immutable") from None

    def write_new(self, key: str, data: bytes) -> None:
        target = self.path(key)
        with self._temp_beside(target) as tmp, open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            self._link_new(tmp, target)

    def write_parquet_new(self, key: str, table: Tabular, **options: Any) -> None:
        """Stream ``table`` to a temp file beside the target (no full in-memory copy), then publish."""
        target = self.path(key)
        with self._temp_beside(target) as tmp:
            write_parquet(table, tmp, **options)
            self._link_new(tmp, target)

    def write_arrow_new(self, key: str, table: pa.Table, batch_rows: int) -> None:
        """Stream ``table`` to an uncompressed Arrow IPC file beside the target, then publish it."""
        target = self.path(key)
        with self._temp_beside(target) as tmp:
            with pa.OSFile(tmp, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=batch_rows)
            self._link_new(tmp, target)

    def arrow_file(self, key: str) -> ArrowFile:
        """The file mapped read-only (shared with the page cache: nothing is copied until asked)."""
        try:
            with open(self.path(key), "rb") as handle:
                mapping = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
        except FileNotFoundError:
            raise NotFoundError(f"No object at {self.uri(key)}") from None
        buffer = pa.py_buffer(mapping)
        return ArrowFile(ipc.open_file(pa.BufferReader(buffer)), mapping, buffer.address)

    def write_replace(self, key: str, data: bytes) -> None:
        target = self.path(key)
        with self._temp_beside(target) as tmp:
            Path(tmp).write_bytes(data)
            os.replace(tmp, target)

    def write_parquet_replace(self, key: str, table: Tabular, **options: Any) -> None:
        """Stream ``table`` to a temp file beside the target, then put it in the old one's place."""
        target = self.path(key)
        with self._temp_beside(target) as tmp:
            write_parquet(table, tmp, **options)
            os.replace(tmp, target)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` but hidden ones (temp files of in-flight writes, locks)."""
        walk = os.walk(self.path(prefix))
        return sorted(
            Path(folder, name).relative_to(self.root).as_posix()
            for folder, _, files in walk
            for name in files
            if not name.startswith(".")
        )

    def list_children(self, prefix: str) -> list[str]:
        """Names of the "folders" directly under ``prefix`` (one listing, no recursion)."""
        base = self.path(prefix)
        if not base.is_dir():
            return []
        return sorted(entry.name for entry in base.iterdir() if entry.is_dir() and not entry.name.startswith("."))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def parquet_source(self, key: str) -> Any:
        path = self.path(key)
        if not path.exists():
            raise NotFoundError(f"No object at {path}")
        return str(path)

    def parquet_stream(self, key: str) -> Any:
        """A path: Arrow reads local files by range already."""
        return self.parquet_source(key)


class S3Storage:
    """An S3 bucket (or any S3 API: MinIO, moto) through a boto3 client, e.g. dagster-aws's S3Resource."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, key: str) -> str:
        if ".." in key.split("/"):
            raise ClusterPipelineError(f"Refusing storage key with '..': {key!r}")
        return self.prefix + key

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"No object at {self.uri(key)}") from None

    def write_new(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except self.client.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise AlreadyExistsError(f"{self.uri(key)} exists already and is immutable") from None
            raise

    def write_parquet_new(self, key: str, table: Tabular, **options: Any) -> None:
        self.write_new(key, parquet_bytes(table, **options))

    def write_arrow_new(self, key: str, table: pa.Table, batch_rows: int) -> None:
        self.write_new(key, arrow_bytes(table, batch_rows))

    def arrow_file(self, key: str) -> ArrowFile:
        """Record batches read one at a time, each by one ranged request (``S3RangeFile``)."""
        return ArrowFile(ipc.open_file(pa.PythonFile(self.parquet_stream(key), mode="r")))

    def write_replace(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def write_parquet_replace(self, key: str, table: Tabular, **options: Any) -> None:
        self.write_replace(key, parquet_bytes(table, **options))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError:
            return False
        return True

    def _pages(self, prefix: str, **options: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix), **options)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(
            item["Key"][len(self.prefix) :] for page in self._pages(prefix) for item in page.get("Contents", [])
        )

    def list_children(self, prefix: str) -> list[str]:
        base = self._key(prefix)
        pages = self._pages(prefix, Delimiter="/")
        return sorted(
            {common["Prefix"][len(base) :].rstrip("/") for page in pages for common in page.get("CommonPrefixes", [])}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def parquet_source(self, key: str) -> Any:
        return pa.BufferReader(self.read_bytes(key))

    def parquet_stream(self, key: str) -> Any:
        try:
            size = int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except self.client.exceptions.ClientError:
            raise NotFoundError(f"No object at {self.uri(key)}") from None
        return S3RangeFile(self.client, self.bucket, self._key(key), size)


class S3RangeFile(io.RawIOBase):
    """One S3 object as a read-only seekable file, read by ranged ``GetObject`` requests.

    What Arrow asks for is what crosses the network and what is held: the footer, then the pages
    of the projected columns. A read that continues where the last one ended (a column streamed
    page by page) fetches a read-ahead block of ``READ_AHEAD_BYTES`` (S3's advice for throughput:
    ranges of 8–16 MB) and serves the next reads from it, so memory holds one block; other reads
    fetch exactly their range.
    """

    READ_AHEAD_BYTES = 8 << 20

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.position = 0
        self._last_end = -1
        self._block_start, self._block = 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def _get(self, start: int, end: int) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")
        return response["Body"].read()

    def read(self, size: int | None = -1) -> bytes:
        start = self.position
        end = self.size if size is None or size < 0 else min(self.size, start + size)
        if end <= start:
            return b""
        if self._block_start <= start and end <= self._block_start + len(self._block):
            data = self._block[start - self._block_start : end - self._block_start]
        elif start == self._last_end and end - start < self.READ_AHEAD_BYTES:
            self._block = b""  # drop the old block before fetching the next
            self._block_start, self._block = start, self._get(start, min(self.size, start + self.READ_AHEAD_BYTES))
            data = self._block[: end - start]
        else:
            data = self._get(start, end)
        self.position = self._last_end = start + len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def exclusive(storage: Storage, lock_key: str) -> Iterator[None]:
    """Hold an exclusive lock named ``lock_key`` (a hidden file: listings skip it) on a local lake. On S3
    there is none: writers rely on create-only keys, and a replaced object (one ``PutObject``) is never torn.

    The lock file, and the folders that leaves empty, are removed on release, so a refused command leaves
    nothing behind. A waiter whose file was removed meanwhile holds a lock nobody else sees: it finds
    that out by comparing the file it locked with the one at the path, and locks again."""
    if not isinstance(storage, LocalStorage):
        yield
        return
    path = storage.path(lock_key)
    try:
        handle = _locked(path)
    except OSError as error:
        raise write_failure(error, path.parent) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        prune_empty(path.parent, storage.root)
        handle.close()


def _locked(path: Path) -> io.TextIOWrapper:
    """The lock file at ``path``, opened (and its folders made) and locked; see ``exclusive``."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")  # noqa: SIM115 - held until ``exclusive`` releases it
        except (FileNotFoundError, FileExistsError):  # a folder was pruned as we made it (FileExistsError:
            continue  # mkdir found it, then it was gone before mkdir checked it is a folder): make it again
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def _new_temp_file(target: Path) -> str:
    """A new empty temp file (mode ``FILE_MODE``) in ``target``'s folder, made if needed."""
    for last in (False, False, True):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            break
        except (FileNotFoundError, FileExistsError):  # a folder was pruned as we made it: make it again
            if last:
                raise
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; lake files are read by the webserver, other tools, people
    os.close(fd)
    return name


def prune_empty(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty, so a refused or failed write
    leaves no folder behind (a writer that finds its folder gone makes it again)."""
    for path in (folder, *folder.parents):
        if root not in path.parents:
            return
        try:
            path.rmdir()
        except OSError:  # it holds something, or is gone already
            return


def read_parquet(storage: Storage, key: str, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet object (all of it, or just ``columns``).

    Lake reads go through ``ParquetFile.read`` on the calling thread, not ``pq.read_table``: that
    one scans through Arrow's dataset machinery, whose thread pool can be left holding the reader,
    and releasing a reader of Python bytes or of a Python file needs the GIL, which at interpreter
    exit aborts the process (apache/arrow#34314; here a few CLI processes in a hundred that read
    results from S3 exited with SIGABRT after printing their answer).
    """
    return pq.ParquetFile(storage.parquet_source(key)).read(columns=columns, use_threads=False)
