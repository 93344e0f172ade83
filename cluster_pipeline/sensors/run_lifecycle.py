"""No execution stays ``processing`` forever, and none leaves the history.

A run that fails or is canceled, whoever launched it (the CLI's in-process runs too:
``monitor_all_code_locations``), fires ``execution_failure_sensor`` or ``execution_canceled_sensor``,
which write the failed ExecutionResult of an execution that ended without one (a worker killed under
Dagster's code server, a run canceled in the queue, a failure before the step). A CLI run whose process
died, which Dagster still thinks runs, ``execution_lifecycle_sensor`` settles each tick; without a
daemon, every CLI command that touches a configuration does.
"""

import dagster as dg

from cluster_pipeline.lifecycle.failures import failure_message, reconcile_runs, record_failed_run
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS


def _record(context: dg.RunStatusSensorContext, lake: LakeResource, events: list[dg.DagsterEvent]) -> dg.SkipReason:
    run = context.dagster_run
    result = record_failed_run(context.instance, lake.get_lake(), run, failure_message(context.instance, run, events))
    return dg.SkipReason(
        f"Recorded {result.run_id} as failed: {result.error_message}" if result else "Nothing to record."
    )


@dg.run_failure_sensor(
    monitor_all_code_locations=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records a failed ExecutionResult for every execution run that failed without one.",
)
def execution_failure_sensor(context: dg.RunFailureSensorContext, lake: LakeResource):
    return _record(context, lake, [context.failure_event, *context.get_step_failure_events()])


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    monitor_all_code_locations=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records a canceled ExecutionResult for every execution run canceled without one.",
)
def execution_canceled_sensor(context: dg.RunStatusSensorContext, lake: LakeResource):
    return _record(context, lake, [])


@dg.sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails the runs whose worker process died unseen (a CLI run killed), each with its failed result.",
)
def execution_lifecycle_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    recorded = reconcile_runs(context.instance, lake.get_lake())
    for result in recorded:
        context.log.info(f"Recorded {result.run_id} as failed: {result.error_message}")
    return dg.SkipReason(f"Recorded {len(recorded)} failed executions." if recorded else "Every worker is alive.")
