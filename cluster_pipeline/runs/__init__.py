"""Executions as Dagster runs, through Dagster's public API: start one here or through the queue, follow,
wait for and cancel it, and settle runs whose worker died unseen. The surface the service uses."""

from cluster_pipeline.lifecycle.failures import reconcile_runs
from cluster_pipeline.lifecycle.records import find_run
from cluster_pipeline.runs.launcher import (
    execute_in_process,
    open_instance,
    queue_daemon_running,
    register_partition,
    submit_execution,
)
from cluster_pipeline.runs.observations import record_annotations
from cluster_pipeline.runs.status import (
    cancel_execution,
    ensure_idle,
    in_flight_execution,
    in_flight_executions,
    wait_for_execution,
)

__all__ = [
    "cancel_execution",
    "ensure_idle",
    "execute_in_process",
    "find_run",
    "in_flight_execution",
    "in_flight_executions",
    "open_instance",
    "queue_daemon_running",
    "reconcile_runs",
    "record_annotations",
    "register_partition",
    "submit_execution",
    "wait_for_execution",
]
