"""Execution status from Dagster's run storage, and the lifecycle guarantee.

A finished execution's truth is its ExecutionResult in the lake; before that, the Dagster run is
the truth: queued → ``pending``, started → ``processing``. Any run that materializes a
configuration's partition counts — the CLI's, the UI's asset job, ``dagster asset materialize``,
sensors and schedules — found by its ``dagster/partition`` tag, whatever the job.

The lifecycle guarantee: whatever ends a run (an error, Ctrl-C, SIGTERM, SIGKILL, the OOM killer,
a reboot), its execution ends ``failed`` with a cause and stays in the history. ``reconcile_runs``
makes it so, from run storage alone — it does not depend on run-status sensors (which never see
runs started outside a code location): a run whose worker process is gone is marked failed, and a
run that ended without an ExecutionResult gets a failed one. The daemon's lifecycle sensor calls
it every tick; without a daemon, every CLI command that touches a configuration calls it first.
Workers are identified by PID *and* start time and boot (``core.processes``), never by PID alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.events import RunFailureReason
from dagster._core.storage.dagster_run import DagsterRun

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore, split_partition_key
from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, ConflictError, NotFoundError
from cluster_pipeline.core.ids import check_run_id, run_id_from_dagster_run
from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE, base_result, failed_result
from cluster_pipeline.core.store.collections import CollectionSnapshot
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.jobs import is_execution_run
from cluster_pipeline.partitions import TAG_PREFIX
from cluster_pipeline.runs.processes import Liveness, WorkerIdentity, signal_worker
from cluster_pipeline.settings import (
    MANUAL_TRIGGER,
    PARTITION_TAG,
    SNAPSHOT_TAG,
    TRIGGER_REASON_TAG,
    TRIGGER_TAG,
    WORKER_TAG,
)

PENDING = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
PROCESSING = (DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
IN_FLIGHT = (*PENDING, *PROCESSING)
ENDED_WITHOUT_SUCCESS = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
CANCELLED_MESSAGE = (
    "Execution cancelled by a user before it completed; execute the configuration again to get a result."
)
CANCEL_GRACE_SECONDS = 15.0


GENERIC_RUN_FAILURE = "This run has been marked as failed from outside the execution context."
CRASH_EXPLANATION = re.compile(r"Run execution process for \S+ (.+?)\.")


def worker_gone_message(worker: str, how: str = "ended") -> str:
    return (
        f"The execution's worker process ({worker}) {how} before the execution completed (killed, out of "
        "memory, or the machine restarted). Execute the configuration again; if it ran out of memory, see "
        "the README's resource limits."
    )


def _crash_explanation(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """How the run worker ended, as Dagster's code server reported it ('was terminated by signal 9 (SIGKILL)')."""
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        found = CRASH_EXPLANATION.search(entry.dagster_event.message or "") if entry.dagster_event else None
        if found:
            return found.group(1)
    return None


# --- runs of a configuration -------------------------------------------------------------------


def partition_runs(
    instance: DagsterInstance, partition_key: str | None, statuses: Iterable[DagsterRunStatus]
) -> list[DagsterRun]:
    """Execution runs in ``statuses`` of one configuration (or of every configuration), whatever their job."""
    tags = {PARTITION_TAG: partition_key} if partition_key else {}
    records = instance.get_run_records(RunsFilter(tags=tags, statuses=list(statuses)))
    return [record.dagster_run for record in records if _partition_of(record.dagster_run) is not None]


def finished_executions(
    instance: DagsterInstance, lake: Lake, updated_after: float | None
) -> list[tuple[DagsterRun, str, str]]:
    """Execution runs that ended, successfully or not, updated after ``updated_after`` (a timestamp):
    each with its ``(namespace, cluster_id)`` — the configuration's, or for one deleted since, the
    run's ``cluster_pipeline/cluster_id`` tag (runs naming neither are left out)."""
    after = datetime.fromtimestamp(updated_after).astimezone() if updated_after is not None else None
    statuses = [DagsterRunStatus.SUCCESS, *ENDED_WITHOUT_SUCCESS]
    found = []
    for record in instance.get_run_records(RunsFilter(statuses=statuses, updated_after=after)):
        run = record.dagster_run
        partition = _partition_of(run)
        if partition is None:
            continue
        config = _config_of(lake, run)
        cluster_id = config.cluster_id if config else run.tags.get(TAG_PREFIX + "cluster_id")
        if cluster_id:
            found.append((run, partition[0], cluster_id))
    return found


def _partition_of(run: DagsterRun) -> tuple[str, str] | None:
    """``(namespace, name or clust_… id)`` of an execution run of a configuration's partition; None for
    any other run (an assignment of new documents is not an execution: it has no ExecutionResult)."""
    if not is_execution_run(run):
        return None
    try:
        return split_partition_key(run.tags.get(PARTITION_TAG, ""))
    except ClusterPipelineError:
        return None


def _config_of(lake: Lake, run: DagsterRun) -> ClusterConfig | None:
    """The configuration a run executes; None for other runs and for keys naming none (added by
    hand, or of a deleted or unreadable configuration): nothing to attach a result to."""
    try:
        return ConfigStore(lake).for_partition(run.tags.get(PARTITION_TAG, ""))
    except ClusterPipelineError:
        return None


def _status_of(run: DagsterRun) -> str:
    return "pending" if run.status in PENDING else "processing"


def _snapshot_of(run: DagsterRun) -> tuple[str | None, int]:
    """Collection version and size the run is clustering, once it has taken its snapshot."""
    try:
        data = json.loads(run.tags.get(SNAPSHOT_TAG, "{}"))
        return data.get("version"), int(data.get("num_documents", 0))
    except (ValueError, TypeError):
        return None, 0


def trigger_of(tags: Mapping[str, str]) -> tuple[str, str | None]:
    """What started a run and why, from the tags sensors and schedules set (``manual`` without them)."""
    return tags.get(TRIGGER_TAG, MANUAL_TRIGGER), tags.get(TRIGGER_REASON_TAG)


def _base_for(instance: DagsterInstance, run: DagsterRun, config: ClusterConfig) -> ExecutionResult:
    record = instance.get_run_record_by_id(run.run_id)
    created_at = record.create_timestamp if record else datetime.now().astimezone()
    version, num_documents = _snapshot_of(run)
    trigger, reason = trigger_of(run.tags)
    return base_result(
        config,
        run_id_from_dagster_run(run.run_id),
        created_at,
        dagster_run_id=run.run_id,
        trigger=trigger,
        trigger_reason=reason,
    ).with_updates(collection_version=version, num_points=num_documents)


def in_flight_executions(instance: DagsterInstance, config: ClusterConfig) -> list[ExecutionResult]:
    """Queued and running executions of one configuration, as ExecutionResults without results yet."""
    return [
        _base_for(instance, run, config).with_updates(status=_status_of(run))
        for run in partition_runs(instance, config.partition_key, IN_FLIGHT)
    ]


def find_run(instance: DagsterInstance, namespace: str, run_id: str) -> DagsterRun:
    """The Dagster run behind ``run_…`` in ``namespace`` (its id starts with the same 16 hex digits).

    A run of another namespace is reported as not found, exactly like a run that does not exist.
    """
    prefix = check_run_id(run_id)[len("run_") :]
    for dagster_run_id in instance.get_run_ids(RunsFilter()):
        if dagster_run_id.replace("-", "").startswith(prefix):
            run = instance.get_run_by_id(dagster_run_id)
            partition = _partition_of(run) if run else None
            if run is not None and partition is not None and partition[0] == namespace:
                return run
            break
    raise NotFoundError(f"Execution {run_id!r} not found in namespace {namespace!r}.")


def in_flight_execution(instance: DagsterInstance, lake: Lake, namespace: str, run_id: str) -> ExecutionResult | None:
    """The pending/processing execution ``run_id`` of ``namespace``, or None."""
    try:
        run = find_run(instance, namespace, run_id)
    except NotFoundError:
        return None
    if run.status not in IN_FLIGHT:
        return None
    config = ConfigStore(lake).for_partition(run.tags[PARTITION_TAG])
    return _base_for(instance, run, config).with_updates(status=_status_of(run))


def ensure_idle(instance: DagsterInstance, lake: Lake, config: ClusterConfig, action: str) -> None:
    """Refuse ``action`` ("update", "delete") while an execution of the configuration is pending or
    processing (after settling runs whose worker died): a queued run reads the configuration when it starts."""
    reconcile_runs(instance, lake, config.partition_key)
    for run in partition_runs(instance, config.partition_key, IN_FLIGHT):
        run_id = run_id_from_dagster_run(run.run_id)
        raise ConflictError(
            f"Cannot {action} {config.display_name} while its execution {run_id} is {_status_of(run)}: wait for it "
            f"(`cluster-pipeline executions wait {run_id}`) or stop it (`cluster-pipeline executions cancel "
            f"{run_id}`), then {action} again."
        )


def wait_for_execution(
    instance: DagsterInstance,
    lake: Lake,
    namespace: str,
    run_id: str,
    timeout: float | None = None,
    poll_seconds: float = 0.5,
) -> ExecutionResult | None:
    """The execution's ExecutionResult once it is completed or failed; None if it is still pending or
    processing after ``timeout`` seconds. Each poll settles the run too, so a dead worker ends the wait
    with its failed result rather than never."""
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
            return None
        time.sleep(poll_seconds if deadline is None else max(0.0, min(poll_seconds, deadline - time.monotonic())))


# --- workers ------------------------------------------------------------------------------------


def dagster_worker_pid(instance: DagsterInstance, run: DagsterRun) -> int | None:
    """The run worker's pid as Dagster reports it: its first engine event that names a pid
    ('Started process for run', 'Executing steps in process', the multiprocess executor's parent)."""
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        if data is not None and "pid" in data.metadata:
            return int(data.metadata["pid"].value)
    return None


def worker_of(run: DagsterRun) -> WorkerIdentity | None:
    text = run.tags.get(WORKER_TAG)
    return WorkerIdentity.from_text(text) if text else None


def record_worker(instance: DagsterInstance, run: DagsterRun) -> None:
    """Name the process running ``run`` (called from inside it), so its death can be told apart from
    a stranger reusing its PID. The CLI names itself when it creates the run; runs launched by
    Dagster are named at their first step: the run worker is the process Dagster reported, when that
    is this process or its parent (in-process and multiprocess executors); else it is not named here.
    """
    if WORKER_TAG in run.tags:
        return
    stored = instance.get_run_by_id(run.run_id)
    if stored is None or WORKER_TAG in stored.tags:
        return
    pid = dagster_worker_pid(instance, run)
    if pid is not None and pid not in (os.getpid(), os.getppid()):
        return
    identity = WorkerIdentity.of(pid if pid is not None else os.getpid())
    if identity is not None:
        instance.add_run_tags(run.run_id, {WORKER_TAG: identity.to_text()})


def record_snapshot(instance: DagsterInstance, run_id: str, snapshot: CollectionSnapshot) -> None:
    """Remember which collection version the run clusters, so a failed result written from outside
    the run (cancel, dead worker) still says how many documents and which version."""
    instance.add_run_tags(
        run_id, {SNAPSHOT_TAG: json.dumps({"version": snapshot.version, "num_documents": snapshot.num_documents})}
    )


def _worker_state(run: DagsterRun) -> tuple[WorkerIdentity | None, Liveness]:
    identity = worker_of(run)
    return identity, identity.liveness() if identity else Liveness.UNKNOWN


# --- recording failures -------------------------------------------------------------------------


def failure_message(instance: DagsterInstance, run: DagsterRun) -> str:
    """Why a run ended without a result, in the user's terms (the step's own message when it has one)."""
    if run.status == DagsterRunStatus.CANCELED:
        return CANCELLED_MESSAGE
    entries = instance.all_logs(run.run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description.strip()
        if data.error is not None and data.error.message:
            return f"The execution failed: {data.error.message.strip()}"
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.event_type != DagsterEventType.RUN_FAILURE:
            continue
        reason = event.job_failure_data.failure_reason if event.event_specific_data else None
        if reason == RunFailureReason.UNEXPECTED_TERMINATION:
            return INTERRUPTED_MESSAGE
        crash = _crash_explanation(instance, run) if event.message == GENERIC_RUN_FAILURE else None
        if crash is not None:
            identity = worker_of(run)
            return worker_gone_message(identity.describe() if identity else "its run worker", crash)
        if event.message:
            return event.message.strip()
    return "The execution's Dagster run failed before it produced a result; see the run's logs in the Dagster UI."


def record_failed_run(instance: DagsterInstance, lake: Lake, run: DagsterRun, message: str) -> ExecutionResult | None:
    """Write the ``failed`` ExecutionResult of a run that has none; None if it has one already."""
    config = _config_of(lake, run)
    if config is None:
        return None
    results = ResultStore(lake)
    if results.exists(config.namespace, config.cluster_id, run_id_from_dagster_run(run.run_id)):
        return None
    result = failed_result(_base_for(instance, run, config), message)
    try:
        results.write(result)
    except AlreadyExistsError:
        return None
    return result


def reconcile_runs(
    instance: DagsterInstance, lake: Lake, partition_key: str | None = None, *, ended_since: float | None = None
) -> list[ExecutionResult]:
    """Make run storage and the lake agree, for one configuration (or all): returns the failed
    results written. Runs whose worker is dead are ended first; then every run that ended without
    success (since ``ended_since``, a timestamp, if given) gets its failed result if it has none."""
    recorded = []
    for run in partition_runs(instance, partition_key, IN_FLIGHT):
        identity, liveness = _worker_state(run)
        if identity is None or liveness is not Liveness.DEAD:
            continue
        message = worker_gone_message(identity.describe())
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
        result = record_failed_run(instance, lake, run, message)
        if result is not None:
            recorded.append(result)
    tags = {PARTITION_TAG: partition_key} if partition_key else {}
    updated_after = datetime.fromtimestamp(ended_since).astimezone() if ended_since is not None else None
    for record in instance.get_run_records(
        RunsFilter(tags=tags, statuses=list(ENDED_WITHOUT_SUCCESS), updated_after=updated_after)
    ):
        run = record.dagster_run
        config = _config_of(lake, run)
        if config is None or ResultStore(lake).exists(
            config.namespace, config.cluster_id, run_id_from_dagster_run(run.run_id)
        ):
            continue
        result = record_failed_run(instance, lake, run, failure_message(instance, run))
        if result is not None:
            recorded.append(result)
    return recorded


# --- cancelling ---------------------------------------------------------------------------------


def cancel_execution(instance: DagsterInstance, lake: Lake, namespace: str, run_id: str) -> ExecutionResult:
    """Stop a pending or processing execution of ``namespace``; it ends ``failed`` with a 'cancelled' message.

    The failed result is written first (results are write-once, so it wins over anything the worker
    would still write), then the run is stopped: through Dagster's run launcher for runs it
    launched, else by SIGTERM to the worker — only if that exact process still runs.
    """
    run = find_run(instance, namespace, run_id)
    config = ConfigStore(lake).for_partition(run.tags[PARTITION_TAG])
    reconcile_runs(instance, lake, run.tags[PARTITION_TAG])
    run = instance.get_run_by_id(run.run_id) or run
    if run.status not in IN_FLIGHT:
        raise ClusterPipelineError(
            f"Execution {run_id} is not pending or processing (its run is {run.status.value.lower()}); "
            "only in-flight executions can be cancelled."
        )
    if record_failed_run(instance, lake, run, CANCELLED_MESSAGE) is None:
        raise ClusterPipelineError(f"Execution {run_id} has just finished; nothing to cancel.")
    identity, liveness = _worker_state(run)
    if run.status == DagsterRunStatus.QUEUED or (run.status in PENDING and liveness is Liveness.DEAD):
        instance.report_run_canceled(run, message=CANCELLED_MESSAGE)  # nothing runs it yet: the queue skips it
    elif not instance.run_launcher.terminate(run.run_id):
        instance.report_run_canceling(run, message=CANCELLED_MESSAGE)
        if identity is None or not signal_worker(identity, signal.SIGTERM) or not _ended_within(instance, run):
            latest = instance.get_run_by_id(run.run_id)
            if latest is not None and not latest.is_finished:
                instance.report_run_canceled(latest, message=CANCELLED_MESSAGE)
    return ResultStore(lake).get(namespace, run_id, config.cluster_id)


def _ended_within(instance: DagsterInstance, run: DagsterRun, seconds: float = CANCEL_GRACE_SECONDS) -> bool:
    """Wait for a signalled worker to end its run (it records the cancellation itself)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latest = instance.get_run_by_id(run.run_id)
        if latest is None or latest.is_finished:
            return True
        time.sleep(0.2)
    return False
