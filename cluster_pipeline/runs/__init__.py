"""Executions as Dagster runs: start one here or through the queue, follow, wait for and cancel it,
and settle runs that ended without an ExecutionResult.

This is the surface the application service uses (``cluster_pipeline.service``); the modules behind
it are Dagster's public API and the little Dagster cannot do for us (naming a CLI worker process so
that its death is noticed without a daemon).
"""

from cluster_pipeline.runs.launcher import (
    execute_in_process,
    open_instance,
    queue_daemon_running,
    register_partition,
    submit_execution,
)
from cluster_pipeline.runs.status import (
    cancel_execution,
    ensure_idle,
    find_run,
    in_flight_execution,
    in_flight_executions,
    reconcile_runs,
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
    "register_partition",
    "submit_execution",
    "wait_for_execution",
]
