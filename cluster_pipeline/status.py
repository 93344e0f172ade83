"""Execution status from Dagster's run storage: what is pending or processing, and cancelling it.

A finished execution's truth is its ExecutionResult in the lake; before that, the Dagster run is
the truth: queued → ``pending``, started → ``processing``. Runs that end without writing a result
(terminated, crashed, cancelled) get a ``failed`` result written here, from the run's own story.
"""

from __future__ import annotations

import os
import signal
import socket

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import DagsterRun

from cluster_pipeline.core.config import ConfigStore, split_partition_key
from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, NotFoundError
from cluster_pipeline.core.execution import base_result, failed_result
from cluster_pipeline.core.ids import check_run_id, run_id_from_dagster_run
from cluster_pipeline.core.lake import Lake
from cluster_pipeline.core.results import ExecutionResult, ResultStore
from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.settings import PARTITION_TAG

PENDING = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
PROCESSING = (DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
HOST_TAG = "cluster_pipeline/host"
CANCELLED_MESSAGE = (
    "Execution cancelled by a user before it completed; execute the configuration again to get a result."
)


def _status_of(run: DagsterRun) -> str:
    return "pending" if run.status in PENDING else "processing"


def in_flight_executions(instance: DagsterInstance, namespace: str, cluster_id: str) -> list[ExecutionResult]:
    """Queued and running executions of one configuration, as ExecutionResults without results yet."""
    records = instance.get_run_records(
        RunsFilter(
            job_name=CLUSTER_EXECUTION_JOB_NAME,
            tags={PARTITION_TAG: f"{namespace}.{cluster_id}"},
            statuses=[*PENDING, *PROCESSING],
        )
    )
    results = []
    for record in records:
        run = record.dagster_run
        results.append(
            ExecutionResult(
                run_id=run_id_from_dagster_run(run.run_id),
                cluster_id=cluster_id,
                status=_status_of(run),  # type: ignore[arg-type]
                num_clusters=0,
                num_points=0,
                created_at=record.create_timestamp,
                namespace=namespace,
                dagster_run_id=run.run_id,
            )
        )
    return results


def in_flight_execution(instance: DagsterInstance, namespace: str, run_id: str) -> ExecutionResult | None:
    """The pending/processing execution ``run_id`` of ``namespace``, or None."""
    run = find_run(instance, run_id)
    partition_key = run.tags.get(PARTITION_TAG) if run else None
    if run is None or partition_key is None or run.status not in (*PENDING, *PROCESSING):
        return None
    run_namespace, cluster_id = split_partition_key(partition_key)
    if run_namespace != namespace:
        return None
    return next((r for r in in_flight_executions(instance, namespace, cluster_id) if r.run_id == run_id), None)


def find_run(instance: DagsterInstance, run_id: str) -> DagsterRun | None:
    """The Dagster run behind ``run_…`` (its id starts with the same 16 hex digits)."""
    prefix = check_run_id(run_id)[len("run_") :]
    for record in instance.get_run_records(RunsFilter(job_name=CLUSTER_EXECUTION_JOB_NAME)):
        if record.dagster_run.run_id.replace("-", "").startswith(prefix):
            return record.dagster_run
    return None


def record_failed_run(instance: DagsterInstance, lake: Lake, run: DagsterRun, message: str) -> ExecutionResult | None:
    """Write the ``failed`` ExecutionResult of a run that ended without one; None if it has one."""
    partition_key = run.tags.get(PARTITION_TAG)
    if not partition_key:
        return None
    namespace, cluster_id = split_partition_key(partition_key)
    results = ResultStore(lake)
    run_id = run_id_from_dagster_run(run.run_id)
    if results.exists(namespace, cluster_id, run_id):
        return None
    try:
        config = ConfigStore(lake).get(namespace, cluster_id)
    except NotFoundError:
        return None
    record = instance.get_run_record_by_id(run.run_id)
    created_at = record.create_timestamp if record else None
    base = base_result(config, run_id, created_at, dagster_run_id=run.run_id) if created_at else None
    if base is None:
        return None
    result = failed_result(base, message)
    try:
        results.write(result)
    except AlreadyExistsError:
        return None
    return result


def run_worker_pid(instance: DagsterInstance, run: DagsterRun) -> int | None:
    """The pid of the process executing the run, from its 'Started process for run' engine event."""
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        if data is not None and "pid" in data.metadata:
            return int(data.metadata["pid"].value)
    return None


def record_worker_pid(instance: DagsterInstance, run: DagsterRun) -> None:
    """Note this process as the run's worker when Dagster did not (in-process runs), so the watchdog sees it."""
    from dagster._core.events import EngineEventData

    if run_worker_pid(instance, run) is None:
        pid = os.getpid()
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cancel_execution(instance: DagsterInstance, lake: Lake, run_id: str) -> ExecutionResult:
    """Stop a pending or processing execution; it ends ``failed`` with a 'cancelled' message."""
    run = find_run(instance, run_id)
    if run is None:
        raise NotFoundError(f"Execution {run_id!r} is not known to this Dagster instance.")
    if run.status not in (*PENDING, *PROCESSING):
        raise ClusterPipelineError(
            f"Execution {run_id} is not pending or processing (its run is {run.status.value.lower()}); "
            "only in-flight executions can be cancelled."
        )
    if run.status in PENDING:
        instance.report_run_canceled(run, message=CANCELLED_MESSAGE)
    elif not instance.run_launcher.terminate(run.run_id):
        pid = run_worker_pid(instance, run)
        if pid is not None and run.tags.get(HOST_TAG, socket.gethostname()) == socket.gethostname() and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
        instance.report_run_canceled(run, message=CANCELLED_MESSAGE)
    result = record_failed_run(instance, lake, run, CANCELLED_MESSAGE)
    namespace, cluster_id = split_partition_key(run.tags[PARTITION_TAG])
    return result or ResultStore(lake).get(namespace, run_id, cluster_id)
