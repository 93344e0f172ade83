import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import (
    FeatureNotFoundError,
    IngestError,
    InvalidIdentifierError,
    NotFoundError,
    StorageError,
)
from cluster_pipeline.core.store.collections import CollectionStore, EmbeddingModel
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline_tests.conftest import blob_documents


def _files(lake) -> list[str]:
    return lake.storage.list_keys("")


def test_ingest_and_load_matrix(collections, blobs):
    report = collections.ingest("default", "news", blobs)
    assert report.num_documents == 300 and report.features == {"embedding": 16}
    snapshot = collections.snapshot("default", "news")
    matrix = collections.scan(snapshot).matrix("embedding")
    assert matrix.dtype == np.float32 and matrix.shape == (300, 16) and matrix.flags.c_contiguous
    expected = blobs.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 16)
    np.testing.assert_array_equal(matrix, expected)
    part = pq.read_table(collections.storage.parquet_source(snapshot.parts[0].key))
    assert part.column_names == ["document_id", "group", "text"]  # the metadata, in Parquet


def test_a_parts_vectors_are_an_arrow_file_other_tools_read(collections, blobs):
    """The vectors file is a plain uncompressed Arrow IPC (Feather v2) file: pyarrow, pandas and polars
    read its ids and vectors without this project's code."""
    import pandas as pd
    import polars as pl
    import pyarrow.feather as feather

    collections.ingest("default", "news", blobs)
    part = collections.snapshot("default", "news").parts[0]
    path = collections.storage.path(part.vectors_key)
    assert path.name == Path(part.key).name.replace(".parquet", ".arrow")
    expected = blobs.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 16)
    table = feather.read_table(path)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 16)
    assert table.column("document_id").to_pylist() == blobs.column("document_id").to_pylist()
    np.testing.assert_array_equal(
        table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 16), expected
    )
    np.testing.assert_array_equal(np.stack(pd.read_feather(path)["embedding"].to_list()), expected)
    np.testing.assert_array_equal(pl.read_ipc(path)["embedding"].to_numpy(), expected)


def test_parts_written_with_their_vectors_in_parquet_still_read(collections, lake, blobs):
    """A lake written before the vectors moved to Arrow files: its parts hold them in Parquet."""
    collections.ingest("default", "c", blob_documents(20))
    old = blob_documents(30, id_offset=100, seed=1)
    lake.storage.write_parquet_new("default/collections/c/parts/part-000002-30-01d0.parquet", old)
    collections.ingest("default", "c", blob_documents(10, id_offset=200, seed=2))
    collections.delete_documents("default", "c", ["d101", "d5"])
    snapshot = collections.snapshot("default", "c")
    assert [p.vectors_key is not None for p in snapshot.parts] == [True, False, True]
    matrix = collections.scan(snapshot).matrix("embedding")
    parts = [blob_documents(20), old, blob_documents(10, id_offset=200, seed=2)]
    everything = pa.concat_tables([t.select(["document_id", "embedding"]) for t in parts])
    live = everything.filter(pc.invert(pc.is_in(everything.column("document_id"), pa.array(["d101", "d5"]))))
    np.testing.assert_array_equal(
        matrix, live.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 16)
    )
    table = collections.scan(snapshot).table(["document_id", "group", "embedding"])
    assert table.column("document_id").to_pylist() == live.column("document_id").to_pylist()
    assert table.column("embedding").equals(live.column("embedding"))


def test_appends_make_new_versions_and_keep_order(collections):
    collections.ingest("default", "news", blob_documents(100))
    first = collections.snapshot("default", "news")
    collections.ingest("default", "news", blob_documents(50, id_offset=1000, seed=1))
    second = collections.snapshot("default", "news")
    assert first.version != second.version and second.num_documents == 150
    docs = collections.load_documents(second)
    assert list(docs["document_id"][:2]) == ["d0", "d1"] and docs["document_id"].iloc[-1] == "d1049"
    assert collections.scan(first).matrix("embedding").shape == (100, 16)  # a snapshot stays frozen


def test_appends_are_checked_against_the_collection(collections, lake):
    collections.ingest("default", "c", blob_documents(20))
    before = _files(lake)
    with pytest.raises(IngestError, match="Duplicate document_id 'd3'.*already in collection"):
        collections.ingest("default", "c", blob_documents(5, id_offset=3))
    with pytest.raises(IngestError, match="dimension 8, but the collection stores 16"):
        collections.ingest("default", "c", blob_documents(5, dim=8, id_offset=100))
    with pytest.raises(IngestError, match="Missing embedding column 'embedding'"):
        collections.ingest("default", "c", pa.table({"document_id": ["x"], "other": [[1.0] * 16]}), features=["other"])
    assert _files(lake) == before
    assert collections.snapshot("default", "c").num_documents == 20


def test_namespaces_are_isolated(collections):
    collections.ingest("team-a", "c", blob_documents(10))
    assert collections.list_collections("team-a") == ["c"]
    assert collections.list_collections("team-b") == []
    with pytest.raises(NotFoundError, match="not found in namespace 'team-b'"):
        collections.snapshot("team-b", "c")


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", "", "x" * 200, "a b"])
def test_bad_collection_names_never_reach_storage(collections, lake, name):
    with pytest.raises(InvalidIdentifierError, match="Invalid collection"):
        collections.ingest("default", name, blob_documents(5))
    assert _files(lake) == []


def test_bad_namespace_is_refused(collections):
    with pytest.raises(InvalidIdentifierError, match="Invalid namespace"):
        collections.ingest("../x", "c", blob_documents(5))


def test_missing_feature_on_load(collections, blobs):
    collections.ingest("default", "c", blobs)
    with pytest.raises(FeatureNotFoundError, match="Feature extractor 'clip' not found in collection 'c'"):
        collections.scan(collections.snapshot("default", "c")).matrix("clip")


def test_ingest_from_real_parquet(collections, ag_news_path):
    table = pq.read_table(ag_news_path).slice(0, 500)
    collections.ingest("default", "ag", table)
    snap = collections.snapshot("default", "ag")
    assert collections.scan(snap).matrix("embedding").shape == (500, 384)
    assert collections.schema("default", "ag").metadata_columns == ["title", "text", "category"]


def test_deleting_documents_is_a_new_version_and_hides_them(collections, lake):
    collections.ingest("default", "c", blob_documents(20))
    before = collections.snapshot("default", "c")
    assert collections.delete_documents("default", "c", ["d1", "d5"]) == 2
    after = collections.snapshot("default", "c")
    assert after.version != before.version and after.num_documents == 18
    ids = list(collections.load_documents(after)["document_id"])
    assert "d1" not in ids and "d5" not in ids and len(ids) == 18
    matrix = collections.scan(after).matrix("embedding")
    full = collections.scan(before).matrix("embedding")
    np.testing.assert_array_equal(matrix, np.delete(full, [1, 5], axis=0))
    # a deleted id can come back in a later ingest, and the old tombstone does not hide it
    collections.ingest("default", "c", blob_documents(1, id_offset=1, seed=4))
    with pytest.raises(IngestError, match="Duplicate document_id 'd2'"):
        collections.ingest("default", "c", blob_documents(2, id_offset=2, seed=4))
    final = collections.snapshot("default", "c")
    assert final.num_documents == 19 and collections.scan(final).matrix("embedding").shape == (19, 16)
    assert "d1" in set(collections.load_documents(final)["document_id"])


def test_deleting_unknown_ids_deletes_nothing(collections, lake):
    collections.ingest("default", "c", blob_documents(5))
    version = collections.snapshot("default", "c").version
    with pytest.raises(IngestError, match="Document 'nope' is not in collection 'c'.*nothing was deleted"):
        collections.delete_documents("default", "c", ["d1", "nope"])
    assert collections.snapshot("default", "c").version == version


def test_deleting_from_a_collection_that_does_not_exist_creates_nothing(collections, lake):
    """Issue 26, item 8: no lock file, no empty folder for a refused command."""
    with pytest.raises(NotFoundError, match="Collection 'ghost' not found"):
        collections.delete_documents("team", "ghost", ["d1"])
    assert list(Path(lake.storage.root).rglob("*")) == []


def test_an_ingest_the_disk_cannot_hold_writes_nothing(disk):
    """A new collection's schema fits, its part does not: neither stays, nor a folder, a lock or a temp file;
    the collection already there reads as before."""
    collections = CollectionStore(Lake.local(disk.path / "lake"))
    collections.ingest("default", "old", blob_documents(20))
    before = {path: path.read_bytes() if path.is_file() else None for path in (disk.path / "lake").rglob("*")}
    disk.fill(leave_bytes=8192)
    with pytest.raises(StorageError, match="No space left on device"):
        collections.ingest("default", "new", blob_documents(3000))
    after = {path: path.read_bytes() if path.is_file() else None for path in (disk.path / "lake").rglob("*")}
    assert after == before
    assert collections.list_collections("default") == ["old"]
    assert collections.snapshot("default", "old").num_documents == 20


MINILM = EmbeddingModel("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2", 16)


def test_the_model_that_embedded_a_feature_is_recorded_and_kept(collections, lake):
    collections.ingest("default", "texts", blob_documents(30), ["embedding"], {"embedding": MINILM})
    stored = json.loads(lake.storage.read_bytes(lake.collection_schema_key("default", "texts")))
    assert stored["embedding_models"] == {"embedding": asdict(MINILM)}
    assert collections.schema("default", "texts").embedding_models == {"embedding": MINILM}
    report = collections.ingest("default", "texts", blob_documents(30, id_offset=30), None, {"embedding": MINILM})
    assert report.total_documents == 60

    other = EmbeddingModel("openai", "text-embedding-3-small", 16)
    refusals = [
        (other, "embeds 'embedding' with sentence-transformers model sentence-transformers/all-MiniLM-L6-v2 (16 "
         "dimensions), not openai model text-embedding-3-small (16 dimensions): vectors of two models do not compare. "
         "Set CLUSTER_PIPELINE_EMBEDDING_MODEL=sentence-transformers/all-MiniLM-L6-v2"),
        (None, "embeds 'embedding' from text with sentence-transformers model sentence-transformers/all-MiniLM-L6-v2 "
         "(16 dimensions): ingest text with --embed COLUMNS, not vectors"),
    ]  # fmt: skip
    for model, problem in refusals:
        with pytest.raises(IngestError, match=re.escape(problem)):
            collections.check_embedding("default", "texts", "embedding", model)
        with pytest.raises(IngestError, match=re.escape(problem)):
            models = {"embedding": model} if model else None
            collections.ingest("default", "texts", blob_documents(30, id_offset=60), None, models)
    assert collections.snapshot("default", "texts").num_documents == 60  # nothing written


def test_vectors_of_an_unknown_model_take_no_embedded_ones(collections):
    collections.ingest("default", "vectors", blob_documents(30))
    problem = "holds 'embedding' vectors given at ingest, by a model it does not know"
    with pytest.raises(IngestError, match=problem):
        collections.check_embedding("default", "vectors", "embedding", MINILM)
    with pytest.raises(IngestError, match=problem):
        collections.ingest("default", "vectors", blob_documents(30, id_offset=30), None, {"embedding": MINILM})
    collections.check_embedding("default", "vectors", "embedding", None)
    collections.check_embedding("default", "new", "embedding", MINILM)  # a new collection takes any model
