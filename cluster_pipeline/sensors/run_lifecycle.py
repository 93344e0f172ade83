"""No execution stays ``processing`` forever, and none leaves the history.

``execution_lifecycle_sensor`` runs ``status.reconcile_runs`` on every tick: a run whose worker
process is gone (SIGKILL, out of memory, reboot; judged by PID *and* start time) is marked failed,
and every run of a configuration that ended without success — failed, cancelled, interrupted, in
any job (the CLI's, the UI's asset job, ``dagster asset materialize``) — gets its ``failed``
ExecutionResult with the cause. It reads run storage directly rather than reacting to run-status
events: Dagster's run-status sensors never see runs started outside a code location (the CLI's
in-process runs, ``dagster asset materialize``), and those must not vanish either.
"""

import json
import time

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.runs.status import reconcile_runs
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS

# Runs that ended shortly before the previous tick are looked at again: run storage timestamps and
# this clock may differ a little, and recording twice is harmless (results are write-once).
OVERLAP_SECONDS = 60.0


@sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails runs whose worker died and records a failed ExecutionResult for every run that ended without one.",
)
def execution_lifecycle_sensor(context: SensorEvaluationContext, lake: LakeResource):
    now = time.time()
    since = json.loads(context.cursor)["evaluated_at"] - OVERLAP_SECONDS if context.cursor else None
    recorded = reconcile_runs(context.instance, lake.get_lake(), ended_since=since)
    context.update_cursor(json.dumps({"evaluated_at": now}))
    for result in recorded:
        context.log.info(f"Recorded {result.run_id} as failed: {result.error_message}")
    return SkipReason(
        f"Recorded {len(recorded)} failed executions: {[r.run_id for r in recorded]}"
        if recorded
        else "Every run has its outcome recorded."
    )
