"""The lifecycle guarantee: whatever ends a run, its execution ends ``failed`` with a cause (``canceled``
when a person stopped it).

The run writes its own failed result when it can (errors, Ctrl-C, SIGTERM: ``recording_failure``).
What it cannot write is written from outside through ``record_failed_run``, from the run's tags and facts, by
the core's one writer: by the CLI after its in-process run, by a cancel, by Dagster's run-status sensors
for runs Dagster saw end, and by ``reconcile_runs`` for the one case Dagster cannot see — a run whose
worker process died while Dagster still thinks it runs (a CLI run SIGKILLed, out of memory, a reboot).
"""

from collections.abc import Sequence
from typing import Any

from dagster import DagsterEvent, DagsterInstance, DagsterRun, DagsterRunStatus

from cluster_pipeline.core.errors import StorageError
from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE, write_failed_result
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.lifecycle.processes import Liveness
from cluster_pipeline.lifecycle.records import base_of, config_of, in_flight_runs, worker_of

CANCELLED_MESSAGE = (
    "Execution cancelled by a user before it completed; execute the configuration again to get a result."
)
WORKER_GONE_MESSAGE = (
    "The execution's worker process ({worker}) ended before the execution completed (killed, out of memory, or "
    "the machine restarted). Execute the configuration again; if it ran out of memory, see the README's "
    "resource limits."
)
FAILURE_REASON_TAG = "dagster/failure_reason"  # Dagster's RunFailureReason, which it does not export


def failure_message(instance: DagsterInstance, run: DagsterRun, events: Sequence[DagsterEvent]) -> str:
    """Why a run ended without a result, in the user's terms, from its tags, its worker and its step and
    run failure events: the step's own message when it has one."""
    if run.status == DagsterRunStatus.CANCELED:
        return CANCELLED_MESSAGE
    if run.tags.get(FAILURE_REASON_TAG) == "UNEXPECTED_TERMINATION":
        return INTERRUPTED_MESSAGE
    for event in events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description.strip()
            if data.error is not None and data.error.message:
                return f"The execution failed: {_root_cause(data.error)}"
    worker = worker_of(instance, run)
    if worker is not None and worker.liveness() is Liveness.DEAD:  # failed from outside: its code server saw it die
        return WORKER_GONE_MESSAGE.format(worker=worker.describe())
    for event in events:
        if event.is_job_failure and event.message:
            return event.message.strip()
    return "The execution's Dagster run failed before it produced a result; see the run's logs in the Dagster UI."


def _root_cause(error: Any) -> str:
    """The innermost error of a step failure's chain in its own words: Dagster wraps a step's error in
    its own exception class, which says nothing to a user."""
    while error.cause is not None:
        error = error.cause
    text = error.message.strip()
    return text.partition(": ")[2] or text if text.startswith("dagster.") else text


def record_failed_run(
    instance: DagsterInstance, lake: Lake, run: DagsterRun, message: str, *, canceled: bool = False
) -> ExecutionResult | None:
    """Write the ``failed`` ExecutionResult of an execution run that has none — ``canceled`` when a
    person stopped it (``canceled``, or the run is canceled in Dagster); None if it has one already, or
    names no configuration (a partition key added by hand, a deleted configuration)."""
    config = config_of(lake, run)
    if config is None:
        return None
    canceled = canceled or run.status == DagsterRunStatus.CANCELED
    return write_failed_result(ResultStore(lake), base_of(instance, run, config), message, canceled=canceled)


def reconcile_runs(instance: DagsterInstance, lake: Lake, partition_key: str | None = None) -> list[ExecutionResult]:
    """End the in-flight runs of one configuration (or all) whose worker process is dead, each with
    its failed result first; returns the results written."""
    recorded = []
    for run in in_flight_runs(instance, partition_key):
        worker = worker_of(instance, run)
        if worker is None or worker.liveness() is not Liveness.DEAD:
            continue
        message = WORKER_GONE_MESSAGE.format(worker=worker.describe())
        try:
            result = record_failed_run(instance, lake, run, message)
        except StorageError:  # the lake cannot take it now (its disk full): it stays in flight, for the next try
            continue
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
        if result is not None:
            recorded.append(result)
    return recorded
