"""The real `dagster` CLI: the code location loads, and a partition materialized by
`dagster asset materialize` gives the same result as `cluster-pipeline execute`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.cli import main
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline_tests.conftest import blob_documents

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).parent / "dagster"


@pytest.mark.slow
def test_definitions_load_in_the_dagster_cli():
    done = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_dagster_asset_materialize_matches_the_cli(tmp_path, capsys):
    pq.write_table(blob_documents(200, centers=4), tmp_path / "docs.parquet")
    assert main(["ingest", "c", str(tmp_path / "docs.parquet")]) == 0
    capsys.readouterr()
    assert main(["clusters", "create", "--collection", "c", "--param", "n_clusters=4", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    cluster_id = created["cluster_id"]
    assert main(["execute", created["name"], "--json"]) == 0  # by name; the id works too
    via_cli = json.loads(capsys.readouterr().out)

    home = tmp_path / "lake" / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [
            str(DAGSTER),
            "asset",
            "materialize",
            "-m",
            "cluster_pipeline.definitions",
            "--select",
            "group:clustering",
            "--partition",
            f"default.{created['name']}",  # the partition's readable key
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = ResultStore(Lake.local()).list("default", cluster_id)
    assert len(results) == 2
    via_dagster = next(r for r in results if r.run_id != via_cli["run_id"]).to_json_dict()
    for field in ("status", "num_clusters", "num_points"):
        assert via_dagster[field] == via_cli[field]
    # the same numbers, up to float rounding that BLAS threading can vary between processes
    assert via_dagster["metrics"].pop("description") == via_cli["metrics"].pop("description")
    assert via_dagster["metrics"] == pytest.approx(via_cli["metrics"], rel=1e-6)
    assert [(c["num_members"], c["label"], c["keywords"]) for c in via_dagster["centroids"]] == [
        (c["num_members"], c["label"], c["keywords"]) for c in via_cli["centroids"]
    ]
