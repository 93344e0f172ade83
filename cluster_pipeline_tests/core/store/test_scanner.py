"""The one reader of a collection: columns, rows (numbers or a filter), deletions, parts that differ."""

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cluster_pipeline.core.errors import CorruptPartError, NotFoundError
from cluster_pipeline.core.store.scanner import CollectionScanner
from cluster_pipeline_tests.conftest import blob_documents


@pytest.fixture
def scanner(collections) -> CollectionScanner:
    """Three parts (the last without ``group``) and two tombstones: 60 + 40 + 20 - 3 live documents."""
    collections.ingest("default", "c", blob_documents(60))
    collections.delete_documents("default", "c", ["d1", "d2"])
    collections.ingest("default", "c", blob_documents(40, id_offset=100, seed=1))
    collections.ingest("default", "c", blob_documents(20, id_offset=200, seed=2).drop_columns(["group"]))
    collections.delete_documents("default", "c", ["d110"])
    return collections.scan(collections.snapshot("default", "c"))


def expected_ids() -> list[str]:
    return [f"d{i}" for i in [*range(60), *range(100, 140), *range(200, 220)] if i not in (1, 2, 110)]


def test_live_documents_in_collection_order_with_every_tombstone_applied(scanner):
    table = scanner.table(["document_id", "group", "text"])
    assert table.column("document_id").to_pylist() == expected_ids()
    assert table.schema.field("group").type == pa.string() and table.column("group").null_count == 20
    assert scanner.metadata_schema.names == ["document_id", "group", "text"]
    assert [batch.num_rows for batch in scanner.scan(["document_id"])] == [58, 39, 20]  # one batch per part


def test_rows_by_number_and_by_filter(scanner):
    rows = np.array([0, 57, 58, 96, 116])
    ids = scanner.table(["document_id"], rows=rows).column(0).to_pylist()
    assert ids == [expected_ids()[i] for i in rows]
    kept = scanner.table(["document_id", "group"], rows=pc.field("group") == "g1")
    assert kept.num_rows > 0 and set(kept.column("group").to_pylist()) == {"g1"}
    found = scanner.table(["document_id"], rows=pc.field("document_id").isin(["d0", "d1", "d110", "d219"]))
    assert found.column(0).to_pylist() == ["d0", "d219"]


def test_the_matrix_matches_the_rows_and_fills_a_given_block(scanner):
    full = scanner.matrix("embedding")
    assert full.shape == (117, 16) and full.dtype == np.float32 and full.flags.c_contiguous
    rows = np.array([3, 58, 100, 116])
    np.testing.assert_array_equal(scanner.matrix("embedding", rows=rows, batch_rows=7), full[rows])
    wide = np.zeros((len(rows), 20), dtype=np.float32)
    scanner.matrix("embedding", rows=rows, out=wide[:, 2:18])
    np.testing.assert_array_equal(wide[:, 2:18], full[rows])
    batches = list(scanner.vectors("embedding", batch_rows=25))
    assert [start for start, _ in batches][:3] == [0, 23, 48]  # tombstoned rows are not numbered
    np.testing.assert_array_equal(np.concatenate([values for _, values in batches]), full)


def test_a_scan_after_a_sequence_reads_only_the_newer_parts(collections, scanner):
    newer = collections.scan(scanner.snapshot, after=2)
    assert newer.table(["document_id"]).column(0).to_pylist() == expected_ids()[58:]


def test_a_part_that_is_not_what_its_name_says_is_refused(scanner):
    first, *rest = scanner.snapshot.parts
    changed = replace(scanner.snapshot, parts=(replace(first, num_rows=first.num_rows + 1), *rest))
    with pytest.raises(NotFoundError, match="changed while loading"):
        CollectionScanner(scanner.storage, changed, scanner.metadata_columns).matrix("embedding")


@pytest.mark.parametrize("keep", [0, 100, -200], ids=["emptied", "truncated", "tail cut"])
@pytest.mark.parametrize("file", ["parquet", "vectors"])
def test_a_corrupt_part_is_named_with_the_fix(scanner, keep, file):
    """Issue 26, item 4: a truncated part ended in "ArrowInvalid: Parquet magic bytes not found", naming no
    file. A part is two files: its metadata (Parquet) and its vectors (Arrow); each is named when broken."""
    info = scanner.snapshot.parts[1]
    part = scanner.storage.path(info.key if file == "parquet" else info.vectors_key)
    part.write_bytes(part.read_bytes()[:keep])
    reads = (
        (lambda: scanner.matrix("embedding"),)
        if file == "vectors"
        else (
            lambda: scanner.table(["document_id", "group"]),
            lambda: CollectionScanner(scanner.storage, scanner.snapshot, scanner.metadata_columns).metadata_schema,
        )
    )
    for read in reads:
        with pytest.raises(CorruptPartError) as refused:
            read()
        message = str(refused.value)
        assert str(part) in message and "restore that file" in message and "\n" not in message
