"""Executions as Dagster sees them: the runs of a configuration's partition in run storage.

Until an execution has its ExecutionResult in the lake, its Dagster run is the truth: queued →
``pending``, started → ``processing``. Any run that materializes a configuration's partition counts,
whatever the job (the CLI's, the UI's, sensors', schedules'). What a result written from outside a run
needs — its configuration's id, the worker process that runs it, the collection snapshot once taken —
is kept in the run's event log as ``cluster_pipeline run facts`` engine events (the run's log in the UI
shows them), not as tags: the tags are what people filter runs by.
"""

import json
from datetime import datetime
from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore, split_partition_key
from cluster_pipeline.core.errors import ClusterPipelineError, ConflictError, NotFoundError
from cluster_pipeline.core.ids import check_run_id, run_id_from_dagster_run
from cluster_pipeline.core.pipeline.execution import base_result
from cluster_pipeline.core.store.collections import CollectionSnapshot
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.jobs import is_execution_run
from cluster_pipeline.lifecycle.processes import WorkerIdentity
from cluster_pipeline.settings import MANUAL_TRIGGER, PARTITION_TAG, TRIGGER_REASON_TAG, TRIGGER_TAG

FACTS_MARK = "cluster_pipeline run facts "  # the engine events that hold a run's bookkeeping, as JSON
PENDING = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
IN_FLIGHT = (*PENDING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def partition_of(run: DagsterRun) -> tuple[str, str] | None:
    """``(namespace, name or clust_… id)`` of an execution run of a configuration's partition; None for
    any other run (an assignment of new documents or a run of checks alone writes no ExecutionResult)."""
    if not is_execution_run(run):
        return None
    try:
        return split_partition_key(run.tags.get(PARTITION_TAG, ""))
    except ClusterPipelineError:
        return None


def in_flight_runs(instance: DagsterInstance, partition_key: str | None) -> list[DagsterRun]:
    """Pending and processing execution runs of one configuration (or of every one), newest first."""
    tags = {PARTITION_TAG: partition_key} if partition_key else {}
    records = instance.get_run_records(RunsFilter(tags=tags, statuses=list(IN_FLIGHT)))
    return [record.dagster_run for record in records if partition_of(record.dagster_run) is not None]


def finished_executions(
    instance: DagsterInstance, lake: Lake, updated_after: float | None
) -> list[tuple[DagsterRun, str, str]]:
    """Execution runs that ended, successfully or not, updated after ``updated_after`` (a timestamp):
    each with its ``(namespace, cluster_id)`` — the configuration's, or for one deleted since, the
    ``cluster_id`` recorded in the run's facts (runs naming neither are left out)."""
    after = datetime.fromtimestamp(updated_after).astimezone() if updated_after is not None else None
    found = []
    for record in instance.get_run_records(RunsFilter(statuses=list(FINISHED), updated_after=after)):
        run, partition = record.dagster_run, partition_of(record.dagster_run)
        config = config_of(lake, run) if partition else None
        cluster_id = config.cluster_id if config else run_facts(instance, run.run_id).get("cluster_id")
        if partition and cluster_id:
            found.append((run, partition[0], cluster_id))
    return found


def config_of(lake: Lake, run: DagsterRun) -> ClusterConfig | None:
    """The configuration a run executes; None for keys naming none (added by hand, or of a deleted or
    unreadable configuration): nothing to attach a result to."""
    try:
        return ConfigStore(lake).for_partition(run.tags.get(PARTITION_TAG, ""))
    except ClusterPipelineError:
        return None


def find_run(instance: DagsterInstance, namespace: str, run_id: str) -> DagsterRun:
    """The Dagster run behind ``run_…`` (its id starts with the same 16 hex digits) in ``namespace``: a run
    of another namespace is not found, exactly like a run that does not exist."""
    prefix = check_run_id(run_id)[len("run_") :]
    for dagster_run_id in instance.get_run_ids(RunsFilter()):
        if dagster_run_id.replace("-", "").startswith(prefix):
            run = instance.get_run_by_id(dagster_run_id)
            partition = partition_of(run) if run else None
            if run is not None and partition is not None and partition[0] == namespace:
                return run
            break
    raise NotFoundError(f"Execution {run_id!r} not found in namespace {namespace!r}.")


def status_of(run: DagsterRun) -> str:
    return "pending" if run.status in PENDING else "processing"


def base_of(instance: DagsterInstance, run: DagsterRun, config: ClusterConfig) -> ExecutionResult:
    """The ExecutionResult a run makes before it has a result: who started it (the tags sensors and
    schedules set; ``manual`` without them), when, and what it clusters once it has taken its snapshot."""
    record = instance.get_run_record_by_id(run.run_id)
    snapshot = run_facts(instance, run.run_id).get("snapshot", {})
    return base_result(
        config,
        run_id_from_dagster_run(run.run_id),
        record.create_timestamp if record else datetime.now().astimezone(),
        dagster_run_id=run.run_id,
        trigger=run.tags.get(TRIGGER_TAG, MANUAL_TRIGGER),
        trigger_reason=run.tags.get(TRIGGER_REASON_TAG),
    ).with_updates(
        status=status_of(run),
        collection_version=snapshot.get("version"),
        num_points=int(snapshot.get("num_documents", 0)),
    )


def record_facts(instance: DagsterInstance, run_id: str, job_name: str, **facts: Any) -> None:
    """Add ``facts`` to the run's bookkeeping (an engine event; the run may not exist yet: the CLI records
    its worker under the run id it is about to start, so no moment of the run lacks one)."""
    instance.report_engine_event(FACTS_MARK + json.dumps(facts, sort_keys=True), job_name=job_name, run_id=run_id)


def run_facts(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """The run's bookkeeping, later facts over earlier ones: ``cluster_id``, ``worker``, ``snapshot``."""
    facts: dict[str, Any] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if entry.message.startswith(FACTS_MARK):
            facts.update(json.loads(entry.message[len(FACTS_MARK) :]))
    return facts


def worker_of(instance: DagsterInstance, run: DagsterRun) -> WorkerIdentity | None:
    return WorkerIdentity.from_text(run_facts(instance, run.run_id).get("worker", ""))  # None without one


def record_worker(instance: DagsterInstance, run: DagsterRun, config: ClusterConfig) -> None:
    """Name the process running ``run`` (called from its step: every run executes in process), so its
    death can be told apart from a stranger reusing its PID, and the configuration it executes. The CLI
    names itself before it starts the run."""
    identity, known = WorkerIdentity.current(), run_facts(instance, run.run_id)
    if identity is not None and (known.get("worker"), known.get("cluster_id")) != (
        identity.to_text(),
        config.cluster_id,
    ):
        record_facts(instance, run.run_id, run.job_name, cluster_id=config.cluster_id, worker=identity.to_text())


def record_snapshot(instance: DagsterInstance, run: DagsterRun, snapshot: CollectionSnapshot) -> None:
    """Remember which collection version the run clusters, so a failed result written from outside
    the run (cancel, dead worker) still says how many documents and which version."""
    facts = {"version": snapshot.version, "num_documents": snapshot.num_documents}
    record_facts(instance, run.run_id, run.job_name, snapshot=facts)


def refuse_second_execution(instance: DagsterInstance, config: ClusterConfig, own_run_id: str | None = None) -> None:
    """One execution per configuration at a time: ConflictError while another run of it is in flight.
    Before launching (``own_run_id`` None) any run counts; inside a run only those created before it,
    so of two runs that raced past the first check exactly the later one yields (Dagster offers no
    public way to store a run and start it as two steps, so the check cannot come between them)."""
    records = instance.get_run_records(RunsFilter(tags={PARTITION_TAG: config.partition_key}, statuses=list(IN_FLIGHT)))
    own = next((r.storage_id for r in records if r.dagster_run.run_id == own_run_id), None)
    for record in sorted(records, key=lambda r: r.storage_id):
        run = record.dagster_run
        if run.run_id == own_run_id or (own is not None and record.storage_id > own) or partition_of(run) is None:
            continue
        other = run_id_from_dagster_run(run.run_id)
        raise ConflictError(
            f"An execution of {config.display_name} is already {status_of(run)} ({other}); "
            f"wait for it, or stop it with `cluster-pipeline executions cancel {other}`."
        )
