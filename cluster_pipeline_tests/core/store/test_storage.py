import contextlib
import io
import os
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, NotFoundError, StorageError
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.storage import LocalStorage, S3RangeFile, S3Storage, exclusive, read_parquet
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.s3_server import moto_s3, s3_client


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, s3_endpoint):
    if request.param == "local":
        return LocalStorage(tmp_path / "root")
    client = s3_client(s3_endpoint)
    bucket = f"lake-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    return S3Storage(client, bucket, prefix="pfx")


def test_write_new_is_create_only(storage):
    storage.write_new("a/b.bin", b"one")
    with pytest.raises(AlreadyExistsError, match="immutable"):
        storage.write_new("a/b.bin", b"two")
    assert storage.read_bytes("a/b.bin") == b"one"
    storage.write_replace("a/c.json", b"1")
    storage.write_replace("a/c.json", b"2")
    assert storage.read_bytes("a/c.json") == b"2"
    assert storage.list_keys("a/") == ["a/b.bin", "a/c.json"]
    storage.write_new("a/sub/d.bin", b"x")
    storage.write_new("z/e.bin", b"x")
    assert storage.list_children("") == ["a", "z"] and storage.list_children("a/") == ["sub"]
    assert storage.exists("a/b.bin") and not storage.exists("a/x")
    with pytest.raises(NotFoundError):
        storage.read_bytes("a/x")


def test_parquet_roundtrip_and_immutability(storage):
    table = pa.table({"x": [1, 2, 3]})
    storage.write_parquet_new("t/x.parquet", table)
    assert read_parquet(storage, "t/x.parquet").equals(table)
    with pytest.raises(AlreadyExistsError):
        storage.write_parquet_new("t/x.parquet", pa.table({"x": [9]}))
    assert read_parquet(storage, "t/x.parquet").equals(table)


def test_collections_work_on_both_backends(storage):
    store = CollectionStore(Lake(storage))
    store.ingest("default", "c", blob_documents(40))
    store.ingest("default", "c", blob_documents(10, id_offset=100))
    snapshot = store.snapshot("default", "c")
    assert snapshot.num_documents == 50 and len(snapshot.parts) == 2
    assert store.scan(snapshot).matrix("embedding").shape == (50, 16)


def test_local_files_are_readable_by_others(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    storage.write_new("a.bin", b"x")
    storage.write_parquet_new("b.parquet", pa.table({"x": [1]}))
    storage.write_replace("c.json", b"{}")
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "root").iterdir()} == {"0o644"}


def test_local_storage_refuses_keys_outside_its_root(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(ClusterPipelineError, match="outside the data root"):
        storage.write_new("../escape.txt", b"x")
    assert not (tmp_path / "escape.txt").exists()


def test_failed_parquet_write_leaves_no_file(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(Exception):  # noqa: B017 - any writer error; what matters is what's left behind
        storage.write_parquet_new("t/x.parquet", pa.table({"x": [1]}), compression="no-such-codec")
    assert list((tmp_path / "root").rglob("*")) == []  # not even the folder made for it


def test_the_lock_excludes_though_its_file_goes_with_each_release(tmp_path):
    """Holders, some refused (an error inside), never overlap; afterwards no lock file or folder is left."""
    storage = LocalStorage(tmp_path / "root")
    inside, overlaps = [], []

    def hold(worker: int) -> None:
        for attempt in range(25):
            with contextlib.suppress(ValueError), exclusive(storage, "ns/collections/c/.lock"):
                inside.append(worker)
                overlaps.append(len(inside) > 1)
                time.sleep(0.0005)
                inside.remove(worker)
                if attempt % 3 == 0:
                    raise ValueError("refused")

    threads = [threading.Thread(target=hold, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlaps) == 150 and not any(overlaps)
    assert list((tmp_path / "root").rglob("*")) == []


def _every_file(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_full_disk_is_named_with_the_folder_and_leaves_nothing_behind(disk):
    """Issue 26, item 2: ENOSPC, not a missing temp file; no temp file left; what was there stays readable."""
    storage = LocalStorage(disk.path / "lake")
    storage.write_new("ns/kept.bin", b"kept")
    disk.fill()
    writes = {
        "write_new": lambda: storage.write_new("ns/new.bin", b"x" * 100_000),
        "write_parquet_new": lambda: storage.write_parquet_new("ns/t.parquet", pa.table({"x": np.arange(100_000)})),
        "write_replace": lambda: storage.write_replace("ns/kept.bin", b"y" * 100_000),
    }
    folder = disk.path / "lake" / "ns"
    for name, write in writes.items():
        with pytest.raises(
            StorageError, match=rf"^Cannot write to {folder}: No space left on device; nothing was written"
        ):
            write()
        assert _every_file(folder) == ["kept.bin"], name
    assert storage.read_bytes("ns/kept.bin") == b"kept" and storage.list_keys("ns") == ["ns/kept.bin"]


def test_a_read_only_disk_is_named_with_the_fix(disk):
    storage = LocalStorage(disk.path / "lake")
    storage.write_new("ns/kept.bin", b"kept")
    disk.read_only()
    try:
        with pytest.raises(StorageError, match=r"Read-only file system; nothing was written there\. To go on, remount"):
            storage.write_new("ns/other/new.bin", b"x")
        assert storage.read_bytes("ns/kept.bin") == b"kept"
    finally:
        disk.writable()


def test_s3_parquet_stream_reads_only_the_ranges_asked_for(s3_endpoint):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="ranges")
    storage = S3Storage(client, "ranges")
    rng = np.random.default_rng(0)
    wide = pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=200_000 * 16).astype(np.float32)), 16)
    storage.write_parquet_new("p.parquet", pa.table({"id": pa.array(range(200_000)), "vector": wide}))
    size = client.head_object(Bucket="ranges", Key="p.parquet")["ContentLength"]
    fetched: list[int] = []
    client.meta.events.register(
        "after-call.s3.GetObject",
        lambda http_response, **_: fetched.append(int(http_response.headers["content-length"])),
    )

    ids = pq.read_table(storage.parquet_stream("p.parquet"), columns=["id"]).column("id")
    assert ids.to_pylist() == list(range(200_000))
    assert 0 < sum(fetched) < size / 4  # the footer and the id column, not the vectors

    fetched.clear()
    stream = storage.parquet_stream("p.parquet")
    assert stream.read(0) == b"" and stream.seek(0, io.SEEK_END) == size and stream.read(10) == b""
    stream.seek(4)
    whole = client.get_object(Bucket="ranges", Key="p.parquet")["Body"].read()
    fetched.clear()
    assert [stream.read(100) for _ in range(3)] == [whole[4:104], whole[104:204], whole[204:304]]
    assert fetched == [100, S3RangeFile.READ_AHEAD_BYTES]  # then sequential reads come from the read-ahead block
    stream.seek(1000)
    assert stream.read(10) == whole[1000:1010] and len(fetched) == 2  # inside the block: no request
    with pytest.raises(NotFoundError):
        storage.parquet_stream("missing.parquet")
