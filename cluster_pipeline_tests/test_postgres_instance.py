"""PostgreSQL as the Dagster instance's storage, on a real server, with deploy/'s storage and queue
settings: executions and their run records, events and partitions, the sensors' and the schedule's
reads, pending runs, cancelling and the history all work on it, through the CLI a user runs. The
daemon and the queue on PostgreSQL are exercised by the production topology test (``test_topology.py``)."""

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)

from cluster_pipeline.cli import main
from cluster_pipeline.definitions import defs
from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
from cluster_pipeline.resources import LakeResource
from cluster_pipeline.schedules import nightly_schedule
from cluster_pipeline.sensors.collection_changes import collection_change_sensor
from cluster_pipeline.settings import PARTITION_TAG
from cluster_pipeline_tests.conftest import blob_documents

COMPOSE_INSTANCE = Path(__file__).resolve().parents[1] / "deploy" / "compose" / "dagster.yaml"


@pytest.fixture
def postgres_home(postgres_url, tmp_path, monkeypatch) -> Path:
    """A DAGSTER_HOME whose instance is deploy/'s storage and queue, on this test's database."""
    settings = yaml.safe_load(COMPOSE_INSTANCE.read_text())
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({key: settings[key] for key in ("storage", "run_coordinator", "telemetry")})
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    return home


def cli_json(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_executions_sensors_schedule_queue_and_history_on_postgres(postgres_home, tmp_path, capsys):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    pq.write_table(blob_documents(150, centers=3), tmp_path / "first.parquet")
    pq.write_table(blob_documents(30, centers=3, id_offset=1000, seed=2), tmp_path / "more.parquet")
    cli_json(capsys, "ingest", "news", str(tmp_path / "first.parquet"))
    # executed on every change (not assigned to), so the sensor's request is an execution the queue holds
    (tmp_path / "config.json").write_text(json.dumps({"triggers": {"on_change": True, "assign_new_documents": False}}))
    created = cli_json(
        capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--config-file",
        str(tmp_path / "config.json"),
    )  # fmt: skip
    nightly = cli_json(capsys, "clusters", "create", "--collection", "news", "--schedule", "nightly")
    cluster_id, partition = created["cluster_id"], f"default.{created['name']}"

    executed = cli_json(capsys, "execute", cluster_id)
    assert executed["status"] == "completed" and executed["num_points"] == 150

    instance = DagsterInstance.get()
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    (record,) = instance.get_run_records(RunsFilter(job_name=CLUSTER_EXECUTION_JOB_NAME))
    run = record.dagster_run
    assert run.status == DagsterRunStatus.SUCCESS and run.tags[PARTITION_TAG] == partition
    assert executed["dagster_run_id"] == run.run_id
    materializations = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert materializations and {event.dagster_event.partition for event in materializations} == {partition}
    assert instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    assert instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, partition)

    # the change sensor reads the instance (partitions) and asks for exactly the new collection version
    cli_json(capsys, "ingest", "news", str(tmp_path / "more.parquet"))
    with build_sensor_context(instance=instance, resources={"lake": LakeResource()}, definitions=defs) as context:
        sensed = collection_change_sensor(context)
    assert isinstance(sensed, SensorResult)
    (request,) = sensed.run_requests
    assert request.partition_key == partition and request.run_key.startswith(f"{partition}@v")

    # the schedule asks for the nightly configuration only, once per night
    night = dt.datetime(2026, 1, 2, 2, 0, tzinfo=dt.UTC)
    with build_schedule_context(
        instance=instance, scheduled_execution_time=night, resources={"lake": LakeResource()}
    ) as context:
        (scheduled,) = nightly_schedule(context)
    assert scheduled.partition_key == f"default.{nightly['name']}" and scheduled.run_key.endswith("@2026-01-02")

    # a run of the sensor's request that has not started is pending in the history, and can be cancelled
    # (runs through the queue itself, with the daemon, are the topology test's)
    queued = instance.create_run_for_job(
        job_def=defs.resolve_job_def(CLUSTER_EXECUTION_JOB_NAME),
        tags={**request.tags, PARTITION_TAG: partition, "dagster/run_key": request.run_key},
        status=DagsterRunStatus.NOT_STARTED,
    )
    run_id = "run_" + queued.run_id.replace("-", "")[:16]
    listed = cli_json(capsys, "executions", "list", cluster_id, "--include-total")
    assert [(r["run_id"], r["status"]) for r in listed["results"]] == [
        (run_id, "pending"),
        (executed["run_id"], "completed"),
    ]
    assert cli_json(capsys, "executions", "show", run_id)["status"] == "pending"
    cancelled = cli_json(capsys, "executions", "cancel", run_id)
    assert cancelled["status"] == "canceled" and "cancelled" in cancelled["error_message"]
    assert instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.CANCELED
    latest = cli_json(capsys, "executions", "latest", cluster_id, "--status", "completed")
    assert latest["run_id"] == executed["run_id"]
