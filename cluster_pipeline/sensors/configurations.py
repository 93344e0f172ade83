"""Configurations as partitions, and configurations with their own cron.

``configuration_sensor`` makes every saved configuration a partition (and drops those whose configuration
is gone). ``custom_schedule_sensor`` runs configurations whose cron or timezone differs from the nightly
schedule's, once per cron tick (the run key names it). One that cannot be scheduled (a file edited by
hand) is skipped with a warning and never stops the others.
"""

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import dagster as dg
from croniter import croniter

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.incremental.triggers import cron_of
from cluster_pipeline.jobs import cluster_execution_job
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.schedules.nightly import runs_on_nightly_schedule
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS, TRIGGER_TAG

CUSTOM_SCHEDULE_INTERVAL_SECONDS = 60


@dg.sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every cluster configuration as a partition of the clustering assets.",
)
def configuration_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    wanted = {config.partition_key for config in ConfigStore(lake.get_lake()).list_all()}
    existing = set(context.instance.get_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME))
    requests = []
    if wanted - existing:
        requests.append(dg.AddDynamicPartitionsRequest(CLUSTER_CONFIGS_PARTITIONS_NAME, sorted(wanted - existing)))
    if existing - wanted:
        requests.append(dg.DeleteDynamicPartitionsRequest(CLUSTER_CONFIGS_PARTITIONS_NAME, sorted(existing - wanted)))
    return dg.SensorResult(dynamic_partitions_requests=requests)


def due_ticks(config: ClusterConfig, since: float, until: float) -> list[dt.datetime]:
    """The configuration's cron ticks in (since, until], in its time zone. A tick whose wall-clock time
    repeats the previous one's (the hour a fall-back clock change plays twice) is dropped, so a daily
    cron runs once that night, as Dagster's schedules do."""
    cron = cron_of(config)
    if cron is None:
        return []
    start = dt.datetime.fromtimestamp(since, ZoneInfo(config.triggers.timezone))
    ticks, last, times = [], croniter(cron, start).get_prev(dt.datetime), croniter(cron, start)
    while (tick := times.get_next(dt.datetime)).timestamp() <= until:
        if tick.replace(tzinfo=None) != last.replace(tzinfo=None):
            ticks.append(tick)
        last = tick
    return ticks


@dg.sensor(
    job=cluster_execution_job,
    minimum_interval_seconds=CUSTOM_SCHEDULE_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Executes configurations that name their own cron or timezone, once per tick.",
)
def custom_schedule_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    now = time.time()
    since = json.loads(context.cursor)["evaluated_at"] if context.cursor else now
    requests = []
    for config in ConfigStore(lake.get_lake()).list_all():
        try:
            if cron_of(config) is None or runs_on_nightly_schedule(config):
                continue
            ticks = due_ticks(config, since, now)
        except Exception as error:  # one unschedulable configuration must not stop the others
            context.log.warning(f"{config.display_name}: not scheduled ({type(error).__name__}: {error})")
            continue
        if ticks:  # several missed ticks collapse into one run for the latest
            requests.append(
                dg.RunRequest(
                    run_key=f"{config.partition_key}@{ticks[-1].isoformat()}",
                    partition_key=config.partition_key,
                    tags={TRIGGER_TAG: "schedule", **configuration_tags(config)},
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"evaluated_at": now}))
