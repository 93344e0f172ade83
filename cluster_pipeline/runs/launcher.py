"""Run a configuration's partition through Dagster from outside the UI (CLI, tests, demo).

The run goes into the Dagster instance of ``$DAGSTER_HOME`` (by default ``<data root>/dagster_home``,
the same folder the repository's ``dagster.yaml`` points ``dagster dev`` at), so runs started here
show in the UI with their materializations, and the ExecutionResult's ``dagster_run_id`` leads there.

A run is created first, as the UI would create it (the job, the partition's tags, the code's
origin) and named after this process, its worker; then it is executed here. Creating before
executing is what makes one execution per configuration exact: of two clients starting at once,
the one whose run was stored second withdraws it. Whatever ends the execution — an error, Ctrl-C,
SIGTERM — the run is settled before this returns or raises: ended in Dagster, and with a
``failed`` ExecutionResult if it has none.

``submit_execution`` instead puts the run in Dagster's queue and returns at once (``execute
--no-wait``): the daemon (``dagster dev``, ``dagster-daemon run``) starts it under the queue's
limits, through the code location named ``cluster_pipeline`` — the name ``workspace.yaml``,
``pyproject.toml`` and the deployment's code server all give it (``CLUSTER_PIPELINE_CODE_LOCATION``
overrides it for a deployment that names it otherwise).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from dagster import DagsterEvent, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import ConfigurationError, ExecutionError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE
from cluster_pipeline.core.store.lake import Lake, default_root
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.deployment import current_deployment
from cluster_pipeline.jobs import is_execution_run
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags
from cluster_pipeline.runs.processes import WorkerIdentity
from cluster_pipeline.settings import PARTITION_TAG, WORKER_TAG

if TYPE_CHECKING:
    from dagster._core.definitions.reconstruct import ReconstructableJob
    from dagster._core.remote_origin import RemoteJobOrigin
    from dagster._core.storage.dagster_run import DagsterRun

CODE_LOCATION = "cluster_pipeline"
CODE_LOCATION_ENV = "CLUSTER_PIPELINE_CODE_LOCATION"
DEFINITIONS_MODULE = "cluster_pipeline.definitions"
# a queue daemon that has not written a heartbeat for this long is taken to be gone
DAEMON_HEARTBEAT_SECONDS = 120

# Dagster's own step logs and tracebacks stay in the run's event log (the UI shows them); the
# console gets only what the CLI prints.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def dagster_home(root: Path | None = None) -> Path:
    """``$DAGSTER_HOME`` if set, else ``<data root>/dagster_home`` (created on first use)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = (root or default_root()) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():  # an explicit (default) instance: no start-up notice, no telemetry
        settings.write_text("telemetry:\n  enabled: false\n")
    return home


def open_instance(root: Path | None = None) -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    if current_deployment() != "local":  # a lake in S3 with runs in a local SQLite file would split the truth
        raise ConfigurationError(
            "DAGSTER_DEPLOYMENT=s3 needs the deployment's Dagster instance: set DAGSTER_HOME to a folder whose "
            "dagster.yaml names its PostgreSQL (see deploy/README.md)."
        )
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home(root))))


def register_partition(instance: DagsterInstance, config: ClusterConfig) -> None:
    """Make the configuration a partition (idempotent)."""
    if not instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key):
        instance.add_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME, [config.partition_key])


def execution_job() -> ReconstructableJob:
    """The execution job, reconstructable from its module (what a run's code origin points at)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME

    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs")
    return repository.get_reconstructable_job(CLUSTER_EXECUTION_JOB_NAME)


def remote_job_origin(job_name: str) -> RemoteJobOrigin:
    """Where the daemon finds the job of a queued run: the code location ``cluster_pipeline``."""
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE),
        location_name=os.environ.get(CODE_LOCATION_ENV) or CODE_LOCATION,
    )
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)


def create_run(
    instance: DagsterInstance,
    config: ClusterConfig,
    job: ReconstructableJob,
    *,
    queued: bool = False,
    run_id: str | None = None,
) -> DagsterRun:
    """A not-yet-started run of the configuration's partition: naming this process as its worker, or,
    for the queue (``queued``), naming the code location the daemon will launch it from."""
    job_def = job.get_definition()
    tags = {
        **job_def.get_tags_for_partition_key(config.partition_key, selected_asset_keys=None),
        **configuration_tags(config),
    }
    identity = None if queued else WorkerIdentity.current()
    if identity is not None:
        tags[WORKER_TAG] = identity.to_text()
    return instance.create_run_for_job(
        job_def=job_def,
        run_id=run_id,
        run_config=QUIET_RUN_CONFIG,
        tags=tags,
        job_code_origin=job.get_python_origin(),
        remote_job_origin=remote_job_origin(job_def.name) if queued else None,
        status=DagsterRunStatus.NOT_STARTED,
    )


def _refuse_second_execution(instance: DagsterInstance, config: ClusterConfig, own_run_id: str | None) -> None:
    """One execution per configuration: refuse if another run of it is in flight (and, when ours is
    created already, was stored before ours: of two racing clients exactly one goes on)."""
    from dagster import RunsFilter

    from cluster_pipeline.runs.status import IN_FLIGHT

    records = [
        record
        for record in instance.get_run_records(
            RunsFilter(tags={PARTITION_TAG: config.partition_key}, statuses=list(IN_FLIGHT))
        )
        if is_execution_run(record.dagster_run)
    ]
    own = next((r.storage_id for r in records if r.dagster_run.run_id == own_run_id), None)
    for record in sorted(records, key=lambda r: r.storage_id):
        if record.dagster_run.run_id == own_run_id or (own is not None and record.storage_id > own):
            continue
        other = run_id_from_dagster_run(record.dagster_run.run_id)
        state = (
            "pending"
            if record.dagster_run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED)
            else "processing"
        )
        raise ExecutionError(
            f"An execution of {config.display_name} is already {state} ({other}); "
            f"wait for it, or stop it with `cluster-pipeline executions cancel {other}`."
        )


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM interrupts like Ctrl-C (Python's default would end the process without any cleanup).

    Inside the run Dagster maps both to its own interrupt; around it, this makes them a
    KeyboardInterrupt so the run is still settled.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def settle_run(instance: DagsterInstance, lake: Lake, run: DagsterRun) -> None:
    """After the execution returned or was interrupted: the run has ended in Dagster, and if it
    did not succeed it has a failed ExecutionResult."""
    from cluster_pipeline.runs.status import reconcile_runs

    latest = instance.get_run_by_id(run.run_id)
    if latest is not None and not latest.is_finished:
        if latest.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(latest, message=INTERRUPTED_MESSAGE)
        else:
            instance.report_run_failed(latest, message=INTERRUPTED_MESSAGE)
    reconcile_runs(instance, lake, run.tags[PARTITION_TAG])


def execute_in_process(config: ClusterConfig, lake: Lake, instance: DagsterInstance) -> ExecutionResult:
    """Materialize the configuration's partition now, in this process, and return its ExecutionResult.

    A failed or interrupted execution returns its ``failed`` result (the run fails in Dagster too);
    only a run that left no result at all (a bug, not bad input) raises.
    """
    from dagster._core.execution.api import execute_run
    from dagster._core.utils import make_new_run_id

    from cluster_pipeline.runs.instance_sqlite import held_connections

    job = execution_job()
    with _sigterm_interrupts(), held_connections(instance, make_new_run_id(), create_shard=True) as dagster_run_id:
        run = _new_run(instance, lake, config, job, queued=False, run_id=dagster_run_id)
        try:
            execute_run(job, run, instance)
        finally:
            settle_run(instance, lake, run)
    run_id = run_id_from_dagster_run(run.run_id)
    results = ResultStore(lake)
    if results.exists(config.namespace, config.cluster_id, run_id):
        return results.get(config.namespace, run_id, config.cluster_id)
    raise ExecutionError(
        f"Dagster run {run.run_id} ended without an ExecutionResult; its logs in the Dagster UI say why."
    )


def submit_execution(config: ClusterConfig, lake: Lake, instance: DagsterInstance) -> ExecutionResult:
    """Put an execution of the configuration in Dagster's run queue and return its ``pending``
    ExecutionResult at once; the daemon starts it (the same rule holds: one execution per
    configuration at a time)."""
    from cluster_pipeline.runs.status import in_flight_execution

    run = _new_run(instance, lake, config, execution_job(), queued=True)
    instance.report_dagster_event(DagsterEvent.job_enqueue(run), run_id=run.run_id)
    pending = in_flight_execution(instance, lake, config.namespace, run_id_from_dagster_run(run.run_id))
    if pending is None:
        raise ExecutionError(f"Dagster run {run.run_id} left the queue at once; its logs in the Dagster UI say why.")
    return pending


def _new_run(
    instance: DagsterInstance,
    lake: Lake,
    config: ClusterConfig,
    job: ReconstructableJob,
    *,
    queued: bool,
    run_id: str | None = None,
) -> DagsterRun:
    """A created run of the configuration (with ``run_id`` when given), refused (ExecutionError)
    while another is in flight."""
    from cluster_pipeline.runs.status import reconcile_runs

    reconcile_runs(instance, lake, config.partition_key)  # a dead earlier run must not block this one
    _refuse_second_execution(instance, config, None)
    register_partition(instance, config)
    run = create_run(instance, config, job, queued=queued, run_id=run_id)
    try:
        _refuse_second_execution(instance, config, run.run_id)
    except ExecutionError:
        instance.delete_run(run.run_id)
        raise
    return run


def queue_daemon_running(instance: DagsterInstance) -> bool:
    """Whether a daemon that starts queued runs has written a heartbeat to this instance lately."""
    heartbeat = instance.get_daemon_heartbeats().get("QUEUED_RUN_COORDINATOR")
    return heartbeat is not None and time.time() - heartbeat.timestamp < DAEMON_HEARTBEAT_SECONDS
