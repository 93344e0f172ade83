"""``collections export``: the live documents as a file, with their latest cluster when asked."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.incremental.export import export_collection
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.store.ingest import read_documents_file
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config


def test_the_live_documents_in_collection_order_columns_a_part_lacks_as_nulls(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(30))
    collections.ingest("default", "c", blob_documents(10, id_offset=100, seed=1).drop_columns(["group"]))
    collections.delete_documents("default", "c", ["d4", "d105"])
    report = export_collection(lake, "default", "c", tmp_path / "docs.parquet")
    table = pq.read_table(report.path)
    assert report.format == "parquet" and report.documents == table.num_rows == 38 and report.with_clusters == 0
    expected = [f"d{i}" for i in [*range(30), *range(100, 110)] if i not in (4, 105)]
    assert table.column("document_id").to_pylist() == expected
    assert table.column_names == ["document_id", "group", "text"] and table.column("group").null_count == 9


def test_embeddings_in_csv_read_back_by_ingest(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(20))
    export_collection(lake, "default", "c", tmp_path / "docs.csv", embeddings=True)
    collections.ingest("default", "again", read_documents_file(tmp_path / "docs.csv"))
    again = collections.snapshot("default", "again")
    original = collections.scan(collections.snapshot("default", "c")).matrix("embedding")
    assert collections.scan(again).matrix("embedding") == pytest.approx(original, abs=1e-6)


def test_with_clusters_each_document_has_its_latest_cluster(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(60).append_column("run_id", pa.array(["mine"] * 60)))
    config = create_config(lake, parameters={"n_clusters": 3})
    result = execute(lake, config, "run_0000000000000001")
    collections.ingest("default", "c", blob_documents(5, id_offset=100))  # not clustered yet
    report = export_collection(lake, "default", "c", tmp_path / "docs.jsonl", cluster_id=config.cluster_id)
    exported = pd.read_json(report.path, lines=True)
    assert report.documents == 65 and report.with_clusters == 60
    labels = {c.cluster_id: c.label for c in result.centroids}
    clustered = exported.iloc[:60]
    assert (clustered.cluster_id.map(labels) == clustered.cluster_label).all()
    assert exported.iloc[60:].cluster_id.isna().all()
    assert (clustered.run_id == "mine").all() and (clustered.cluster_run_id == result.run_id).all()


def test_an_unknown_format_names_the_fix(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(5))
    with pytest.raises(ConfigurationError, match=r"name a \.parquet, \.csv or \.jsonl file, or pass --format"):
        export_collection(lake, "default", "c", tmp_path / "docs.xlsx")
