"""End to end with the real `dagster-daemon`: documents appended with the CLI are clustered by the
change sensor through the queued run coordinator, with no human action."""

import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.daemon_helpers import REPO, cli, isolated_dagster_home, running_daemon
from cluster_pipeline_tests.waiting import wait_until

WAIT_SECONDS = 240


def wait_for_completed(env, cluster_id: str, count: int, daemon_log: Path) -> list[dict]:
    def completed() -> list[dict] | None:
        results = cli(env, "executions", "list", cluster_id, "--status", "completed")["results"]
        return results if len(results) >= count else None

    return wait_until(
        completed,
        f"{count} completed executions",
        WAIT_SECONDS,
        2,
        detail=lambda: f":\n{daemon_log.read_text()[-4000:]}",
    )


@pytest.mark.slow
def test_appended_documents_are_clustered_by_the_daemon(tmp_path):
    home = isolated_dagster_home(tmp_path)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CLUSTER_PIPELINE_ROOT": str(tmp_path / "lake"),
        "CLUSTER_PIPELINE_SENSOR_INTERVAL": "2",
        "PYTHONPATH": str(REPO),
    }
    pq.write_table(blob_documents(120, centers=3), tmp_path / "first.parquet")
    pq.write_table(blob_documents(40, centers=3, id_offset=5000, seed=1), tmp_path / "more.parquet")
    cli(env, "ingest", "news", str(tmp_path / "first.parquet"))
    cluster_id = cli(env, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--on-change")[
        "cluster_id"
    ]

    daemon_log = tmp_path / "daemon.log"
    with running_daemon(env, daemon_log):
        first = wait_for_completed(env, cluster_id, 1, daemon_log)
        assert first[0]["num_points"] == 120

        cli(env, "ingest", "news", str(tmp_path / "more.parquet"))
        results = wait_for_completed(env, cluster_id, 2, daemon_log)
        newest = results[0]
        assert newest["num_points"] == 160 and newest["status"] == "completed"
        assert newest["drift"]["previous_run_id"] == first[0]["run_id"]

        time.sleep(6)  # further sensor ticks with no change start nothing
        listing = cli(env, "executions", "list", cluster_id, "--include-total")
        assert listing["total"] == 2
