import datetime as dt
import json

import pytest
from dagster import build_schedule_context, build_sensor_context

from cluster_pipeline.definitions import defs
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
from cluster_pipeline.resources import LakeResource
from cluster_pipeline.schedules.nightly import nightly_schedule
from cluster_pipeline.sensors.configurations import configuration_sensor, custom_schedule_sensor, due_ticks
from cluster_pipeline_tests.dagster_helpers import create_config


def resources(lake):
    return {"lake": LakeResource(root=str(lake.storage.root))}


def test_nightly_schedule_runs_each_nightly_configuration_once_per_night(lake, instance):
    nightly = create_config(lake, triggers={"schedule": "nightly"})
    create_config(lake, triggers={"schedule": "*/15 * * * *"})  # served by the custom schedule sensor
    create_config(lake)
    night = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
    instance.add_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME, [nightly.partition_key])
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=night,
        resources=resources(lake),
        repository_def=defs.get_repository_def(),
    ) as context:
        requests = list(nightly_schedule(context))
    assert [r.partition_key for r in requests] == [nightly.partition_key]
    assert requests[0].run_key == f"{nightly.partition_key}@2026-11-28"


def test_configuration_sensor_adds_and_removes_partitions(lake, instance):
    config = create_config(lake)
    instance.add_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME, ["default.clust_000000000000gone"])
    with build_sensor_context(instance=instance, resources=resources(lake)) as context:
        result = configuration_sensor(context)
    added, removed = result.dynamic_partitions_requests
    assert added.partition_keys == [config.partition_key]
    assert removed.partition_keys == ["default.clust_000000000000gone"]


def test_custom_cron_runs_once_per_tick(lake, instance):
    config = create_config(lake, triggers={"schedule": "*/15 * * * *", "timezone": "Europe/Paris"})
    since = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC).timestamp()
    assert [t.minute for t in due_ticks(config, since, since + 31 * 60)] == [15, 30]
    # first evaluation only starts the clock; later ones request the latest due tick
    with build_sensor_context(instance=instance, resources=resources(lake)) as context:
        first = custom_schedule_sensor(context)
    assert first.run_requests == []
    old_cursor = json.dumps({"evaluated_at": json.loads(first.cursor)["evaluated_at"] - 16 * 60})
    with build_sensor_context(instance=instance, cursor=old_cursor, resources=resources(lake)) as context:
        second = custom_schedule_sensor(context)
    assert [r.partition_key for r in second.run_requests] == [config.partition_key]
    assert second.run_requests[0].run_key.startswith(f"{config.partition_key}@")


def test_one_unschedulable_configuration_does_not_stop_the_others(lake, instance):
    """Issue 12, item 8: a configuration saved with timezone 'Mars/Olympus' (before create validated it)
    made custom_schedule_sensor raise for every configuration."""
    config = create_config(lake, triggers={"schedule": "*/15 * * * *"})
    broken = create_config(lake, triggers={"schedule": "*/15 * * * *"})
    path = lake.storage.path(lake.cluster_config_key("default", broken.cluster_id))
    path.write_text(path.read_text().replace('"UTC"', '"Mars/Olympus"'))
    cursor = json.dumps({"evaluated_at": dt.datetime.now(dt.UTC).timestamp() - 16 * 60})
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources(lake)) as context:
        result = custom_schedule_sensor(context)
    assert [r.partition_key for r in result.run_requests] == [config.partition_key]


@pytest.mark.parametrize(
    ("cron", "timezone", "start", "days", "expected"),
    [
        # the night Berlin's clocks go back plays 02:00 twice: a daily cron still runs once
        ("0 2 * * *", "Europe/Berlin", dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC), 1, ["2026-10-25T02:00:00+02:00"]),
        # Paris springs forward at 02:00: 02:30 does not exist that night, it runs at 03:00
        ("30 2 * * *", "Europe/Paris", dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC), 1, ["2026-03-29T03:00:00+02:00"]),
        ("0 9 * * 1-5", "UTC", dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC), 3, ["2026-11-30T09:00:00+00:00"]),
        ("0 0 29 2 *", "UTC", dt.datetime(2027, 2, 27, tzinfo=dt.UTC), 3, []),  # no Feb 29 in 2027
    ],
)
def test_custom_cron_ticks_follow_the_configurations_time_zone(lake, cron, timezone, start, days, expected):
    config = create_config(lake, triggers={"schedule": cron, "timezone": timezone})
    ticks = due_ticks(config, start.timestamp(), start.timestamp() + days * 86_400)
    assert [tick.isoformat() for tick in ticks] == expected
