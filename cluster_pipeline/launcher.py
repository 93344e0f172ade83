"""Run a configuration's partition through Dagster from outside the UI (CLI, tests, demo).

The run goes into the Dagster instance of ``$DAGSTER_HOME`` (by default ``<data root>/dagster_home``,
the same folder the repository's ``dagster.yaml`` points ``dagster dev`` at), so runs started here
show in the UI with their materializations, and the ExecutionResult's ``dagster_run_id`` leads there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from cluster_pipeline.core.config import ClusterConfig
from cluster_pipeline.core.errors import ConfigurationError, ExecutionError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.lake import Lake, default_root
from cluster_pipeline.core.results import ExecutionResult, ResultStore
from cluster_pipeline.deployment import current_deployment
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME


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


def execute_in_process(
    config: ClusterConfig, lake: Lake, instance: DagsterInstance, *, log_level: str = "WARNING"
) -> ExecutionResult:
    """Materialize the configuration's partition now, in this process, and return its ExecutionResult.

    A failed execution returns its ``failed`` result (the run fails in Dagster too); only a run that
    left no result at all (a bug, not bad input) raises.
    """
    from cluster_pipeline.definitions import defs
    from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
    from cluster_pipeline.status import HOST_TAG, in_flight_executions

    running = in_flight_executions(instance, config.namespace, config.cluster_id)
    if running:
        raise ExecutionError(
            f"An execution of {config.cluster_id} is already {running[0].status} ({running[0].run_id}); "
            f"wait for it, or stop it with `cluster-pipeline executions cancel {running[0].run_id}`."
        )
    register_partition(instance, config)
    job = defs.resolve_job_def(CLUSTER_EXECUTION_JOB_NAME)
    outcome = job.execute_in_process(
        partition_key=config.partition_key,
        instance=instance,
        raise_on_error=False,
        tags={HOST_TAG: socket.gethostname()},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    run_id = run_id_from_dagster_run(outcome.run_id)
    results = ResultStore(lake)
    if results.exists(config.namespace, config.cluster_id, run_id):
        return results.get(config.namespace, run_id, config.cluster_id)
    failures = [event.message for event in outcome.all_events if event.is_failure and event.message]
    raise ExecutionError(f"Dagster run {outcome.run_id} ended without an ExecutionResult: {'; '.join(failures)}")
