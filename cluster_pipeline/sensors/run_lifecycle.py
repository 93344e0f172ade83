"""No execution stays ``processing`` forever.

* ``execution_failure_sensor``: a failed run without an ExecutionResult (killed, crashed, step
  error outside our handling) gets a ``failed`` one, with the step's own error message.
* ``execution_canceled_sensor``: a cancelled run gets a ``failed`` result saying so.
* ``run_watchdog_sensor``: a run whose worker process died on this host (SIGKILL, out of memory)
  never reports anything; Dagster's run monitoring does not watch local subprocess workers, so
  this marks such runs failed, which then triggers the failure sensor.
"""

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME, cluster_execution_job
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS
from cluster_pipeline.status import CANCELLED_MESSAGE, pid_alive, record_failed_run, run_worker_pid


def _failure_message(context: RunFailureSensorContext) -> str:
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None and error.message:
            return error.message.strip()
    return (context.failure_event.message or "The execution's run failed.").strip()


@run_failure_sensor(
    monitored_jobs=[cluster_execution_job],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
)
def execution_failure_sensor(context: RunFailureSensorContext, lake: LakeResource):
    result = record_failed_run(context.instance, lake.get_lake(), context.dagster_run, _failure_message(context))
    if result is not None:
        context.log.info(f"Recorded {result.run_id} as failed: {result.error_message}")


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    monitored_jobs=[cluster_execution_job],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
)
def execution_canceled_sensor(context: RunStatusSensorContext, lake: LakeResource):
    record_failed_run(context.instance, lake.get_lake(), context.dagster_run, CANCELLED_MESSAGE)


@sensor(minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=DefaultSensorStatus.RUNNING)
def run_watchdog_sensor(context: SensorEvaluationContext):
    """Fail started runs whose worker process is gone."""
    records = context.instance.get_run_records(
        RunsFilter(job_name=CLUSTER_EXECUTION_JOB_NAME, statuses=[DagsterRunStatus.STARTED])
    )
    dead = []
    for record in records:
        run = record.dagster_run
        pid = run_worker_pid(context.instance, run)
        if pid is not None and not pid_alive(pid):
            context.instance.report_run_failed(
                run,
                message=f"Run worker process (pid {pid}) died: the execution was interrupted (killed, out of "
                "memory or restarted). Execute the configuration again.",
            )
            dead.append(run.run_id)
    return SkipReason(f"Marked {len(dead)} dead runs failed: {dead}" if dead else "All started runs are alive.")
