"""Status lifecycle against Dagster's run storage: pending, cancel, concurrency, dead run workers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterEventType, DagsterRunStatus, build_run_status_sensor_context, build_sensor_context

from cluster_pipeline.cli import main
from cluster_pipeline.definitions import defs
from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.launcher import open_instance
from cluster_pipeline.resources import LakeResource
from cluster_pipeline.sensors.run_lifecycle import execution_failure_sensor, run_watchdog_sensor
from cluster_pipeline.status import find_run
from cluster_pipeline_tests.conftest import blob_documents


def queue_run(instance, partition_key: str):
    job = defs.resolve_job_def(CLUSTER_EXECUTION_JOB_NAME)
    return instance.create_run_for_job(
        job_def=job, tags={"dagster/partition": partition_key}, status=DagsterRunStatus.NOT_STARTED
    )


def create_config(capsys, tmp_path) -> str:
    pq.write_table(blob_documents(60), tmp_path / "docs.parquet")
    assert main(["ingest", "c", str(tmp_path / "docs.parquet")]) == 0
    capsys.readouterr()
    assert main(["clusters", "create", "--collection", "c", "--param", "n_clusters=3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["cluster_id"]


def test_pending_is_listed_refuses_a_second_execution_and_can_be_cancelled(tmp_path, capsys):
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        run = queue_run(instance, f"default.{cluster_id}")
    run_id = "run_" + run.run_id.replace("-", "")[:16]

    assert main(["executions", "list", cluster_id, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["results"]
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "pending")]
    assert listed[0]["completed_at"] is None and listed[0]["metrics"] is None

    assert main(["executions", "show", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "pending"
    assert main(["executions", "show", run_id, "--namespace", "other"]) == 2  # not visible from another namespace
    capsys.readouterr()

    assert main(["execute", cluster_id]) == 2
    assert f"already pending ({run_id})" in capsys.readouterr().err

    assert main(["executions", "cancel", run_id, "--json"]) == 0
    cancelled = json.loads(capsys.readouterr().out)
    assert cancelled["status"] == "failed" and "cancelled" in cancelled["error_message"]
    with open_instance() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED

    assert main(["executions", "latest", cluster_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "failed"
    assert main(["executions", "cancel", run_id]) == 2
    assert "only in-flight executions can be cancelled" in capsys.readouterr().err


def _parquet_files_are_whole(root: Path) -> None:
    for path in root.rglob("*.parquet"):
        pq.read_table(path)  # raises on a torn file


@pytest.mark.slow
def test_killed_run_ends_failed_and_leaves_no_torn_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150_000, 48)).astype(np.float32)
    pq.write_table(
        pa.table(
            {
                "document_id": [f"k{i}" for i in range(len(X))],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 48),
            }
        ),
        tmp_path / "big.parquet",
    )
    assert main(["ingest", "big", str(tmp_path / "big.parquet")]) == 0
    capsys.readouterr()
    assert (
        main(
            ["clusters", "create", "--collection", "big", "--param", "n_clusters=200", "--param", "n_init=20", "--json"]
        )
        == 0
    )
    cluster_id = json.loads(capsys.readouterr().out)["cluster_id"]

    worker = subprocess.Popen(
        [sys.executable, "-m", "cluster_pipeline.cli", "execute", cluster_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        deadline = time.time() + 120
        run = None
        with open_instance() as instance:
            while time.time() < deadline:
                records = instance.get_run_records()
                if records and any(
                    e.dagster_event.event_type == DagsterEventType.STEP_START
                    and e.dagster_event.step_key == "cluster_execution_step"
                    for e in instance.all_logs(records[0].dagster_run.run_id, of_type=DagsterEventType.STEP_START)
                ):
                    run = records[0].dagster_run
                    break
                time.sleep(0.2)
            assert run is not None, "the execution never started its step"
            time.sleep(0.5)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)

            assert main(["executions", "list", cluster_id, "--json"]) == 0
            assert json.loads(capsys.readouterr().out)["results"][0]["status"] == "processing"

            with build_sensor_context(instance=instance) as context:
                run_watchdog_sensor(context)
            failed_run = instance.get_run_by_id(run.run_id)
            assert failed_run.status == DagsterRunStatus.FAILURE
            failure = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)[0].dagster_event
            with build_run_status_sensor_context(
                sensor_name="execution_failure_sensor",
                dagster_instance=instance,
                dagster_run=failed_run,
                dagster_event=failure,
                resources={"lake": LakeResource()},
            ) as context:
                execution_failure_sensor(context.for_run_failure())
            assert find_run(instance, "run_" + run.run_id.replace("-", "")[:16]) is not None
    finally:
        if worker.poll() is None:
            worker.kill()
    assert main(["executions", "list", cluster_id, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["status"] == "failed" and "died" in result["error_message"]
    _parquet_files_are_whole(tmp_path / "lake")
