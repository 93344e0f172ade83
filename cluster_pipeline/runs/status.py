"""Follow, wait for and cancel executions: pending and processing ones from Dagster's run storage,
finished ones from their ExecutionResult (``lifecycle.records``). Every command that touches a
configuration settles its runs first (``reconcile_runs``), so a worker that died without a daemon
to notice is recorded failed and never blocks the configuration."""

import signal
import time

from dagster import DagsterInstance

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import ClusterPipelineError, ConflictError, ExecutionError, NotFoundError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.lifecycle.failures import CANCELLED_MESSAGE, reconcile_runs, record_failed_run
from cluster_pipeline.lifecycle.processes import signal_worker
from cluster_pipeline.lifecycle.records import IN_FLIGHT, base_of, find_run, in_flight_runs, status_of, worker_of
from cluster_pipeline.settings import PARTITION_TAG

CANCEL_GRACE_SECONDS = 15.0
POLL_SECONDS = 0.5


def in_flight_executions(instance: DagsterInstance, config: ClusterConfig) -> list[ExecutionResult]:
    """Queued and running executions of one configuration, as ExecutionResults without results yet."""
    return [base_of(instance, run, config) for run in in_flight_runs(instance, config.partition_key)]


def in_flight_execution(instance: DagsterInstance, lake: Lake, namespace: str, run_id: str) -> ExecutionResult | None:
    """The pending/processing execution ``run_id`` of ``namespace``, or None."""
    try:
        run = find_run(instance, namespace, run_id)
    except NotFoundError:
        return None
    in_flight = run.status in IN_FLIGHT
    return base_of(instance, run, ConfigStore(lake).for_partition(run.tags[PARTITION_TAG])) if in_flight else None


def ensure_idle(instance: DagsterInstance, lake: Lake, config: ClusterConfig, action: str) -> None:
    """Refuse ``action`` ("update", "delete") while an execution of the configuration is pending or
    processing (after settling runs whose worker died): a queued run reads the configuration when it starts."""
    reconcile_runs(instance, lake, config.partition_key)
    for run in in_flight_runs(instance, config.partition_key):
        run_id = run_id_from_dagster_run(run.run_id)
        raise ConflictError(
            f"Cannot {action} {config.display_name} while its execution {run_id} is {status_of(run)}: wait for it "
            f"(`cluster-pipeline executions wait {run_id}`) or stop it (`cluster-pipeline executions cancel "
            f"{run_id}`), then {action} again."
        )


def wait_for_execution(
    instance: DagsterInstance, lake: Lake, namespace: str, run_id: str, timeout: float | None = None
) -> ExecutionResult:
    """The execution's ExecutionResult once it is completed or failed; after ``timeout`` seconds, as it
    is then (pending or processing). Each poll settles the run too, so a dead worker ends the wait with
    its failed result rather than never."""
    results = ResultStore(lake)
    try:
        return results.get(namespace, run_id)
    except NotFoundError:
        run = find_run(instance, namespace, run_id)
    partition_key = run.tags[PARTITION_TAG]
    cluster_id = ConfigStore(lake).for_partition(partition_key).cluster_id  # deletion waits for the run
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        reconcile_runs(instance, lake, partition_key)
        if results.exists(namespace, cluster_id, run_id):
            return results.get(namespace, run_id, cluster_id)
        if deadline is not None and time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
    pending = in_flight_execution(instance, lake, namespace, run_id)
    if pending is None and not results.exists(namespace, cluster_id, run_id):  # it ended between two looks
        raise ExecutionError(f"Execution {run_id} ended without an ExecutionResult; the Dagster UI says why.")
    return pending or results.get(namespace, run_id, cluster_id)


def cancel_execution(instance: DagsterInstance, lake: Lake, namespace: str, run_id: str) -> ExecutionResult:
    """Stop a pending or processing execution of ``namespace``; it ends ``canceled``, saying so.
    The canceled result is written first (results are write-once, so it wins over anything the worker
    would still write), then the run is stopped: by Dagster's run coordinator and launcher where they
    can, else (a CLI's in-process run) by SIGTERM to the worker, only if that exact process still runs;
    its Dagster then records the run canceled."""
    run = find_run(instance, namespace, run_id)
    config = ConfigStore(lake).for_partition(run.tags[PARTITION_TAG])
    reconcile_runs(instance, lake, config.partition_key)
    run = instance.get_run_by_id(run.run_id) or run
    if run.status not in IN_FLIGHT:
        raise ClusterPipelineError(
            f"Execution {run_id} is not pending or processing (its run is {run.status.value.lower()}); "
            "only in-flight executions can be cancelled."
        )
    if record_failed_run(instance, lake, run, CANCELLED_MESSAGE, canceled=True) is None:
        raise ClusterPipelineError(f"Execution {run_id} has just finished; nothing to cancel.")
    if not instance.run_coordinator.cancel_run(run.run_id):
        worker = worker_of(instance, run)
        signalled = worker is not None and signal_worker(worker, signal.SIGTERM)
        deadline = time.monotonic() + (CANCEL_GRACE_SECONDS if signalled else 0)  # its Dagster ends the run
        latest = instance.get_run_by_id(run.run_id)
        while latest is not None and not latest.is_finished and time.monotonic() < deadline:
            time.sleep(0.2)
            latest = instance.get_run_by_id(run.run_id)
        if latest is not None and not latest.is_finished:  # nothing runs it: it ends here
            instance.report_run_canceled(latest, message=CANCELLED_MESSAGE)
    return ResultStore(lake).get(namespace, run_id, config.cluster_id)
