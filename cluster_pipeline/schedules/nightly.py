"""The nightly schedule: one execution per night for each configuration with ``schedule: nightly`` (or the
same cron) in the schedule's timezone; any other cron or timezone is ``custom_schedule_sensor``'s. The
run key names the night, so a night never runs a configuration twice.
"""

import os

import dagster as dg

from cluster_pipeline.core.config.model import NIGHTLY_CRON, ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.incremental.triggers import cron_of
from cluster_pipeline.jobs import cluster_execution_job
from cluster_pipeline.partitions import configuration_tags
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import TRIGGER_TAG

NIGHTLY_TIMEZONE = os.environ.get("CLUSTER_PIPELINE_TIMEZONE", "UTC")


def runs_on_nightly_schedule(config: ClusterConfig) -> bool:
    return cron_of(config) == NIGHTLY_CRON and config.triggers.timezone == NIGHTLY_TIMEZONE


@dg.schedule(
    job=cluster_execution_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-executes every configuration with a nightly schedule.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource):
    night = context.scheduled_execution_time.date().isoformat()
    requests = [
        dg.RunRequest(
            run_key=f"{config.partition_key}@{night}",
            partition_key=config.partition_key,
            tags={TRIGGER_TAG: "nightly", **configuration_tags(config)},
        )
        for config in ConfigStore(lake.get_lake()).list_all()
        if runs_on_nightly_schedule(config)
    ]
    return requests or dg.SkipReason("No configuration has a nightly schedule.")
