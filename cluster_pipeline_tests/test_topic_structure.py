"""The topic hierarchy and topics over time through a Dagster materialization: stored in the result,
drawn beside it, shown in the metadata, the report and the CLI."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, DagsterInstance
from PIL import Image

from cluster_pipeline.cli import main
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


def dated_documents(n: int = 400) -> pa.Table:
    """Five topics over a year; the first topic fades out, the last grows."""
    table = blob_documents(n, centers=5)
    groups = table.column("group").to_pylist()
    day = [(i * 365) // n for i in range(n)]
    day = [
        d if g not in ("g0", "g4") else (d // 2 if g == "g0" else 182 + d // 2)
        for d, g in zip(day, groups, strict=True)
    ]
    published = pd.Timestamp("2024-01-01") + pd.to_timedelta(day, unit="D")
    return table.append_column("published", pa.array(published.date, pa.date32()))


def test_hierarchy_and_topics_over_time_are_stored_and_drawn(lake, collections, tmp_path, capsys):
    documents = dated_documents()
    collections.ingest("default", "c", documents)
    config = create_config(lake, parameters={"n_clusters": 5})
    with DagsterInstance.ephemeral() as instance:
        outcome, result = materialize_config(lake, config, instance)
        latest = instance.get_latest_materialization_event
        labels_metadata = latest(AssetKey("cluster_labels")).asset_materialization.metadata
        metadata = latest(AssetKey("execution_result")).asset_materialization.metadata
    assert outcome.success and result.status == "completed"

    tree = result.hierarchy
    assert tree["leaves"] == [f"cl_{i}" for i in range(5)] and len(tree["nodes"]) == 4
    assert tree["nodes"][-1]["num_members"] == 400
    over_time = result.topics_over_time
    assert (over_time["column"], over_time["granularity"], over_time["buckets"]) == ("published", "week", 53)
    table = pq.read_table(over_time["table"]).to_pandas()
    assert table["count"].sum() == 400
    shares = table.pivot(index="bucket", columns="cluster_id", values="share")
    labels = pd.read_parquet(
        lake.storage.path(lake.execution_key("default", config.cluster_id, result.run_id, "assignments.parquet"))
    )
    fading = documents.column("document_id")[documents.column("group").to_pylist().index("g0")].as_py()
    first_topic = labels.set_index("document_id").cluster_id[fading]  # g0's cluster fades out after half a year
    assert shares[first_topic].iloc[:20].mean() > 0.1 and shares[first_topic].iloc[-20:].max() == 0
    for name in ("hierarchy", "over_time"):
        with Image.open(result.artifacts[name]) as picture:
            assert picture.size[0] == 1200 and picture.size[1] > 200

    assert labels_metadata["hierarchy_tree"].value == tree
    assert labels_metadata["topics_over_time"].value == over_time
    assert metadata["hierarchy"].value.startswith("![hierarchy](data:image/png")  # each picture its own entry
    assert metadata["over_time"].value.startswith("![over_time](data:image/png")

    report = tmp_path / "report.html"
    assert main(["executions", "report", result.run_id, "--output", str(report)]) == 0
    html = report.read_text()
    assert 'alt="hierarchy"' in html and 'alt="over_time"' in html and "topics over time" in html

    capsys.readouterr()
    assert main(["executions", "hierarchy", result.run_id, "--groups", "2", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert len(groups) == 2 and sorted(c for g in groups for c in g["clusters"]) == tree["leaves"]
    assert sum(g["num_members"] for g in groups) == 400 and all(g["label"] for g in groups)
