"""Status lifecycle against Dagster's run storage: pending, cancel, concurrency, dead workers, runs of
any job (issue 12, items 2-7 and 14), and the sensors that settle runs Dagster saw end."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
from dagster import DagsterEventType, DagsterRunStatus, build_run_status_sensor_context, build_sensor_context

from cluster_pipeline.cli import main
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.definitions import defs
from cluster_pipeline.lifecycle.processes import WorkerIdentity, process_start_ticks
from cluster_pipeline.lifecycle.records import record_facts, run_facts
from cluster_pipeline.resources import LakeResource
from cluster_pipeline.runs import open_instance
from cluster_pipeline.sensors.run_lifecycle import (
    execution_canceled_sensor,
    execution_failure_sensor,
    execution_lifecycle_sensor,
)
from cluster_pipeline_tests.conftest import blob_documents

REPO = Path(__file__).resolve().parents[1]


def short_id(dagster_run_id: str) -> str:
    return "run_" + dagster_run_id.replace("-", "")[:16]


def queue_run(instance, partition_key: str, job_name: str = "cluster_execution"):
    """A run of any job of the partition that has not started yet: pending, like a queued one (a run
    in Dagster's own queue needs a code location: ``launch_queued``)."""
    job = defs.resolve_job_def(job_name) if job_name != "__ASSET_JOB" else defs.resolve_implicit_global_asset_job_def()
    return instance.create_run_for_job(
        job_def=job, tags={"dagster/partition": partition_key}, status=DagsterRunStatus.NOT_STARTED
    )


def launch_queued(tmp_path, partition_key: str, job_name: str):
    """A run in Dagster's queue, submitted with ``dagster job launch`` against the code location
    ``cluster_pipeline`` (as ``execute --no-wait`` submits one, for any job of the partition)."""
    run_id = str(uuid.uuid4())
    command = [sys.executable, "-m", "dagster", "job", "launch", "-w", str(REPO / "workspace.yaml"), "-j", job_name,
               "--run-id", run_id, "--tags", json.dumps({"dagster/partition": partition_key})]  # fmt: skip
    home = os.environ.get("DAGSTER_HOME") or str(tmp_path / "lake" / "dagster_home")
    subprocess.run(command, cwd=REPO, env={**os.environ, "DAGSTER_HOME": home}, check=True, capture_output=True)
    with open_instance() as instance:
        return instance.get_run_by_id(run_id)


def create_config(capsys, tmp_path, namespace: str = "default") -> str:
    pq.write_table(blob_documents(60), tmp_path / "docs.parquet")
    assert main(["ingest", "c", str(tmp_path / "docs.parquet"), "--namespace", namespace]) == 0
    capsys.readouterr()
    assert (
        main(["clusters", "create", "--collection", "c", "--param", "n_clusters=3", "--json", "--namespace", namespace])
        == 0
    )
    return json.loads(capsys.readouterr().out)["cluster_id"]


def partition_of(cluster_id: str, namespace: str = "default") -> str:
    """The configuration's partition key (``<namespace>.<name>``)."""
    return ConfigStore(Lake.local()).get(namespace, cluster_id).partition_key


def cli_json(capsys, *argv: str) -> tuple[int, object]:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else json.loads(err)


def dead_worker() -> WorkerIdentity:
    child = subprocess.Popen(["sleep", "60"])
    identity = WorkerIdentity.of(child.pid)
    child.kill()
    child.wait()
    return identity


def started_run(instance, cluster_id: str, worker: WorkerIdentity | None):
    """A run as the CLI starts it, whose worker is ``worker``."""
    job = defs.resolve_job_def("cluster_execution")
    run = instance.create_run_for_job(
        job_def=job, tags={"dagster/partition": partition_of(cluster_id)}, status=DagsterRunStatus.STARTED
    )
    if worker is not None:
        record_facts(instance, run.run_id, run.job_name, worker=worker.to_text())
    return run


def test_pending_is_listed_refuses_a_second_execution_and_can_be_cancelled(tmp_path, capsys):
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        run = queue_run(instance, partition_of(cluster_id))
    run_id = short_id(run.run_id)

    code, listing = cli_json(capsys, "executions", "list", cluster_id)
    assert code == 0 and [(r["run_id"], r["status"]) for r in listing["results"]] == [(run_id, "pending")]
    pending = listing["results"][0]
    assert pending["completed_at"] is None and pending["metrics"] is None
    # item 14: in-flight executions say what they run, not "(None on default/None)"
    assert (pending["algorithm"], pending["collection"], pending["namespace"]) == ("kmeans", "c", "default")
    assert main(["executions", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "kmeans on default/c" in shown and "waiting to start" in shown and "None" not in shown

    assert main(["execute", cluster_id]) == 2
    assert f"already pending ({run_id})" in capsys.readouterr().err

    code, cancelled = cli_json(capsys, "executions", "cancel", run_id)
    assert code == 0 and cancelled["status"] == "canceled" and "cancelled" in cancelled["error_message"]
    with open_instance() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    code, latest = cli_json(capsys, "executions", "latest", cluster_id)
    assert latest["status"] == "canceled"
    assert main(["executions", "cancel", run_id]) == 2
    assert "only in-flight executions can be cancelled" in capsys.readouterr().err


def test_cancel_and_show_never_reach_into_another_namespace(tmp_path, capsys):
    """Item 2: `executions cancel --namespace other RUN` cancelled a run of namespace default."""
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        run = queue_run(instance, partition_of(cluster_id))
    for command in ("cancel", "show"):
        code, error = cli_json(capsys, "executions", command, short_id(run.run_id), "--namespace", "other")
        assert (
            code == 2
            and error["error"]["message"] == f"Execution {short_id(run.run_id)!r} not found in namespace 'other'."
        )
    with open_instance() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.NOT_STARTED  # untouched


def test_a_stranger_with_the_dead_workers_pid_is_not_killed(tmp_path, capsys):
    """Item 3: cancel sent SIGTERM to the recorded PID after checking only that some process had it."""
    cluster_id = create_config(capsys, tmp_path)
    decoy = subprocess.Popen(["sleep", "60"])
    try:
        gone = WorkerIdentity(
            WorkerIdentity.current().host,
            decoy.pid,
            process_start_ticks(decoy.pid) - 1,
            WorkerIdentity.current().boot_id,
        )
        with open_instance() as instance:
            run = started_run(instance, cluster_id, gone)
        main(["executions", "cancel", short_id(run.run_id)])
        capsys.readouterr()
        time.sleep(0.3)
        assert decoy.poll() is None, "the stranger holding the dead worker's PID was signalled"
        code, shown = cli_json(capsys, "executions", "show", short_id(run.run_id))
        assert shown["status"] == "failed" and "worker process" in shown["error_message"]
    finally:
        decoy.kill()
        decoy.wait()


def test_a_run_whose_worker_died_ends_failed_on_the_next_command_and_does_not_block(tmp_path, capsys):
    """Item 4: after SIGKILL (no daemon) the run stayed processing for good and blocked re-execution."""
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        run = started_run(instance, cluster_id, dead_worker())
    code, listing = cli_json(capsys, "executions", "list", cluster_id)
    result = listing["results"][0]
    assert (result["run_id"], result["status"]) == (short_id(run.run_id), "failed")
    assert "worker process" in result["error_message"] and "Execute the configuration again" in result["error_message"]
    code, executed = cli_json(capsys, "execute", cluster_id)
    assert code == 0 and executed["status"] == "completed"
    with open_instance() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE


def test_the_lifecycle_sensor_records_cli_runs_whose_worker_died(tmp_path, capsys):
    """Item 6: Dagster never sees a CLI run's worker die; the daemon's lifecycle sensor does."""
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        dead, alive = started_run(instance, cluster_id, dead_worker()), started_run(instance, cluster_id, None)
        with build_sensor_context(instance=instance, resources={"lake": LakeResource()}) as context:
            execution_lifecycle_sensor(context)
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED  # no worker named: not judged
    code, listing = cli_json(capsys, "executions", "list", cluster_id, "--status", "failed")
    assert [r["run_id"] for r in listing["results"]] == [short_id(dead.run_id)]
    assert "worker process" in listing["results"][0]["error_message"]


def ended_run_sensor(instance, run, status: DagsterRunStatus) -> None:
    """Evaluate the lifecycle sensor Dagster runs for ``run`` ending in ``status`` (in-process runs too)."""
    event_type = DagsterEventType.RUN_FAILURE if status == DagsterRunStatus.FAILURE else DagsterEventType.RUN_CANCELED
    (entry,) = instance.all_logs(run.run_id, of_type=event_type)
    with build_run_status_sensor_context(
        sensor_name="lifecycle",
        dagster_event=entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources={"lake": LakeResource()},
    ) as context:
        if status == DagsterRunStatus.FAILURE:
            execution_failure_sensor(context.for_run_failure())
        else:
            execution_canceled_sensor(context)


def test_runs_dagster_saw_end_without_a_result_get_their_failed_result(tmp_path, capsys):
    """A run that failed before its step wrote a result, a daemon worker killed under its code server
    (Dagster fails the run from outside) and a run canceled in the queue: each gets its cause."""
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        failed, killed = started_run(instance, cluster_id, None), started_run(instance, cluster_id, dead_worker())
        instance.report_run_failed(failed, message="Resource 'llm' failed to initialize.")
        instance.report_run_failed(killed)  # what the code server's orphan check does
        queued = queue_run(instance, partition_of(cluster_id))
        instance.report_run_canceled(queued)
        for run, status in ((failed, DagsterRunStatus.FAILURE), (killed, DagsterRunStatus.FAILURE),
                            (queued, DagsterRunStatus.CANCELED)):  # fmt: skip
            ended_run_sensor(instance, run, status)
    code, listing = cli_json(capsys, "executions", "list", cluster_id, "--status", "failed", "--status", "canceled")
    messages = {r["run_id"]: r["error_message"] for r in listing["results"]}
    assert {r["run_id"]: r["status"] for r in listing["results"]}[short_id(queued.run_id)] == "canceled"
    assert messages[short_id(failed.run_id)] == "Resource 'llm' failed to initialize."
    assert "worker process" in messages[short_id(killed.run_id)]
    assert "cancelled" in messages[short_id(queued.run_id)]


def test_runs_of_any_job_of_the_partition_are_seen(tmp_path, capsys):
    """Item 7: runs from the UI's asset job or `dagster asset materialize` were invisible to status,
    cancel and the one-run-per-configuration guard."""
    cluster_id = create_config(capsys, tmp_path)
    run = launch_queued(tmp_path, partition_of(cluster_id), job_name="__ASSET_JOB")
    assert run.status == DagsterRunStatus.QUEUED
    code, listing = cli_json(capsys, "executions", "list", cluster_id)
    assert [(r["run_id"], r["status"]) for r in listing["results"]] == [(short_id(run.run_id), "pending")]
    assert main(["execute", cluster_id]) == 2
    assert "already pending" in capsys.readouterr().err
    code, cancelled = cli_json(capsys, "executions", "cancel", short_id(run.run_id))
    assert code == 0 and cancelled["status"] == "canceled"
    with open_instance() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED  # taken out of the queue


def test_worker_identity_and_snapshot_are_recorded_in_the_runs_event_log_not_its_tags(tmp_path, capsys):
    """The tags are what people filter runs by (namespace, collection, algorithm, name); the lifecycle's
    bookkeeping is in the run's log."""
    cluster_id = create_config(capsys, tmp_path)
    code, executed = cli_json(capsys, "execute", cluster_id)
    with open_instance() as instance:
        run = instance.get_run_by_id(executed["dagster_run_id"])
        facts = run_facts(instance, run.run_id)
    assert WorkerIdentity.from_text(facts["worker"]) == WorkerIdentity.current() and facts["cluster_id"] == cluster_id
    assert facts["snapshot"]["num_documents"] == 60
    ours = sorted(tag.split("/", 1)[1] for tag in run.tags if tag.startswith("cluster_pipeline/"))
    assert ours == ["algorithm", "collection", "name", "namespace"]


def test_report_and_hierarchy_of_an_execution_in_flight_say_so(tmp_path, capsys, monkeypatch):
    """Issue 26, item 6: `executions report` and `hierarchy` of a processing run answered "not found"
    while `executions show` found it."""
    cluster_id = create_config(capsys, tmp_path)
    with open_instance() as instance:
        runs = {"pending": queue_run(instance, partition_of(cluster_id))}
        runs["processing"] = started_run(instance, cluster_id, None)
    for status, run in runs.items():
        run_id = short_id(run.run_id)
        for argv in (["report", run_id, "--output", str(tmp_path / "r.html")], ["hierarchy", run_id]):
            assert main(["executions", *argv]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: Execution {run_id} is {status}:") and err.count("\n") == 1, err
            assert f"executions wait {run_id}" in err
    assert not (tmp_path / "r.html").exists()
    # item 9: `executions wait RUN --timeout 2 | head -1` exited 0 where unpiped it exits 124
    assert main(["executions", "wait", short_id(runs["pending"].run_id), "--timeout", "0"]) == 124
    reader, writer = os.pipe()
    os.close(reader)  # the reader has gone before a line is written
    with open(writer, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert main(["executions", "wait", short_id(runs["pending"].run_id), "--timeout", "0"]) == 124
    assert "Traceback" not in capsys.readouterr().err
