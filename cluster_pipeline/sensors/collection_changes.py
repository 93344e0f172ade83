"""Start an execution when a configuration's collection changes.

Exactly one run per (configuration, collection version): the run key names both, so Dagster
refuses a duplicate even if the cursor is lost; the cursor keeps thresholds and cooldowns across
ticks and restarts. A tick reads each bound collection's schema and part listing once — cost grows
with the number of collections, not documents.
"""

import json
import time

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cluster_pipeline.core.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.config import ConfigStore
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.triggers import TriggerState, decide_on_change, state_after_trigger
from cluster_pipeline.jobs import cluster_execution_job
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS, TRIGGER_TAG, VERSION_TAG


@sensor(
    job=cluster_execution_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Executes configurations with on_change triggers when their collection changes.",
)
def collection_change_sensor(context: SensorEvaluationContext, lake: LakeResource):
    store_lake = lake.get_lake()
    cursor: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    configs = [c for c in ConfigStore(store_lake).list_all() if c.triggers.on_change]
    if not configs:
        return SkipReason("No configuration asks for change triggers.")
    collections = CollectionStore(store_lake)
    snapshots: dict[tuple[str, str], CollectionSnapshot | None] = {}
    now = time.time()
    requests, new_partitions, notes = [], [], []
    for config in configs:
        key = (config.namespace, config.collection)
        if key not in snapshots:
            try:
                snapshots[key] = collections.snapshot(*key)
            except NotFoundError:
                snapshots[key] = None
        snapshot = snapshots[key]
        if snapshot is None:
            continue
        previous = TriggerState.from_json(cursor[config.partition_key]) if config.partition_key in cursor else None
        decision = decide_on_change(config, snapshot, previous, now)
        if not decision.run:
            notes.append(f"{config.display_name}: {decision.reason}")
            continue
        if not context.instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key):
            new_partitions.append(config.partition_key)
        requests.append(
            RunRequest(
                run_key=f"{config.partition_key}@{snapshot.version}",
                partition_key=config.partition_key,
                tags={TRIGGER_TAG: "collection_change", VERSION_TAG: snapshot.version, **configuration_tags(config)},
            )
        )
        cursor[config.partition_key] = state_after_trigger(snapshot, now).to_json()
    if notes:
        context.log.info("; ".join(notes))
    return SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursor, sort_keys=True),
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(CLUSTER_CONFIGS_PARTITIONS_NAME, new_partitions)]
        if new_partitions
        else None,
    )
