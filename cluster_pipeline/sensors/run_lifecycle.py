"""No execution stays ``processing`` forever, and none leaves the history.

Dagster settles what it sees: a run that fails or is canceled — whoever launched it, the CLI's
in-process runs included (``monitor_all_code_locations``) — fires ``execution_failure_sensor`` or
``execution_canceled_sensor``, which write the failed ExecutionResult of an execution that ended
without one (a worker killed under Dagster's code server, a run canceled in the queue, a failure
before the step). What Dagster cannot see — a CLI run whose process died, which Dagster still
thinks runs — ``execution_lifecycle_sensor`` settles each tick (``lifecycle.failures.reconcile_runs``);
without a daemon, every CLI command that touches a configuration does.
"""

from dagster import (
    DagsterEvent,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from cluster_pipeline.lifecycle.failures import failure_message, reconcile_runs, record_failed_run
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS


def _record(context: RunStatusSensorContext, lake: LakeResource, events: list[DagsterEvent]) -> SkipReason:
    run = context.dagster_run
    result = record_failed_run(context.instance, lake.get_lake(), run, failure_message(run, events))
    return SkipReason(f"Recorded {result.run_id} as failed: {result.error_message}" if result else "Nothing to record.")


@run_failure_sensor(
    monitor_all_code_locations=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Records a failed ExecutionResult for every execution run that failed without one.",
)
def execution_failure_sensor(context: RunFailureSensorContext, lake: LakeResource):
    return _record(context, lake, [context.failure_event, *context.get_step_failure_events()])


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    monitor_all_code_locations=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Records a failed ExecutionResult for every execution run canceled without one.",
)
def execution_canceled_sensor(context: RunStatusSensorContext, lake: LakeResource):
    return _record(context, lake, [])


@sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails the runs whose worker process died unseen (a CLI run killed), each with its failed result.",
)
def execution_lifecycle_sensor(context: SensorEvaluationContext, lake: LakeResource):
    recorded = reconcile_runs(context.instance, lake.get_lake())
    for result in recorded:
        context.log.info(f"Recorded {result.run_id} as failed: {result.error_message}")
    return SkipReason(f"Recorded {len(recorded)} failed executions." if recorded else "Every worker is alive.")
