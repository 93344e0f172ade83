"""An algorithm added to the registry works end to end: created and executed through the real CLI,
its result stored, its configuration a partition of the real Dagster instance."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from cluster_pipeline.cli import main
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
from cluster_pipeline.runs import open_instance
from cluster_pipeline_tests.conftest import blob_documents


def test_bisecting_kmeans_from_the_command_line_to_a_dagster_partition(capsys, tmp_path: Path):
    pq.write_table(blob_documents(240, centers=4), tmp_path / "docs.parquet")
    assert main(["ingest", "news", str(tmp_path / "docs.parquet")]) == 0
    capsys.readouterr()
    argv = ["clusters", "create", "--collection", "news", "--algorithm", "bisecting_kmeans", "--param", "n_clusters=4"]
    assert main([*argv, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "news-bisecting_kmeans-k4" and created["algorithm"] == "bisecting_kmeans"

    assert main(["execute", "news-bisecting_kmeans-k4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "completed" and result["algorithm"] == "bisecting_kmeans"
    assert result["num_clusters"] == 4 and sum(c["num_members"] for c in result["centroids"]) == 240
    assert result["parameters"] == {"n_clusters": 4, "n_init": 3, "random_state": 0}
    assert result["metrics"]["silhouette_score"] > 0.5

    with open_instance() as instance:
        partitions = instance.get_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME)
    assert "default.news-bisecting_kmeans-k4" in partitions
