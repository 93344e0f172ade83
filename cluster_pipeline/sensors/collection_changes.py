"""Keep configurations current when their collection changes: assign small deltas, refit on drift.

For each configuration with ``on_change`` a tick decides (``core.incremental.triggers``): before its
first completed execution, or with ``assign_new_documents`` off, execute it; after, assign the new
documents to the latest execution's clusters (no refit) and execute again only when novelty or growth
calls for a refit, the reason in the run's trigger tags (and so in the ExecutionResult). The run keys
name the configuration and the collection version, so Dagster refuses a duplicate even if the cursor
(thresholds, cooldowns) is lost. A tick reads each collection's listing once and per configuration its
latest result and assignment parts: its cost grows with collections and configurations, not documents.
"""

import json
import time

import dagster as dg

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import ClusterPipelineError, NotFoundError
from cluster_pipeline.core.incremental.baseline import baseline
from cluster_pipeline.core.incremental.new_documents import unassignable
from cluster_pipeline.core.incremental.triggers import FitProgress, Refresh, TriggerState, decide_refresh, state_after
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.jobs import ASSIGNMENT_JOB_NAME, CLUSTER_EXECUTION_JOB_NAME, assignment_job, cluster_execution_job
from cluster_pipeline.lifecycle.records import in_flight_runs
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import (
    ASSIGNMENT_KIND,
    RUN_KIND_TAG,
    SENSOR_INTERVAL_SECONDS,
    TRIGGER_REASON_TAG,
    TRIGGER_TAG,
    VERSION_TAG,
)


@dg.sensor(
    jobs=[cluster_execution_job, assignment_job],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Assigns new documents of configurations with on_change triggers to their latest clusters, and "
    "executes them again when novelty or growth calls for a refit.",
)
def collection_change_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    store_lake = lake.get_lake()
    cursor: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    configs = [c for c in ConfigStore(store_lake).list_all() if c.triggers.on_change]
    if not configs:
        return dg.SkipReason("No configuration asks for change triggers.")
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
        if (snapshot := snapshots[key]) is None:
            continue
        previous = TriggerState.from_json(cursor[config.partition_key]) if config.partition_key in cursor else None
        try:
            assigning = config.triggers.assign_new_documents and unassignable(config) is None  # else: execute
            base = baseline(store_lake, config, snapshot) if assigning else None
            fit = FitProgress.of(base, snapshot) if base else None
            in_flight = bool(in_flight_runs(context.instance, config.partition_key)) if base else False
            refresh = decide_refresh(config, snapshot, previous, fit, now, execution_in_flight=in_flight)
        except ClusterPipelineError as error:  # one configuration's problem never stops the others
            notes.append(f"{config.display_name}: {error}")
            continue
        if refresh.action == "none":
            notes.append(f"{config.display_name}: {refresh.reason}")
            continue
        if not context.instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key):
            new_partitions.append(config.partition_key)
        requests.append(_request(config, snapshot, refresh))
        cursor[config.partition_key] = state_after(refresh, snapshot, previous, now).to_json()
    if notes:
        context.log.info("; ".join(notes))
    new = [dg.AddDynamicPartitionsRequest(CLUSTER_CONFIGS_PARTITIONS_NAME, new_partitions)] if new_partitions else None
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(cursor, sort_keys=True), dynamic_partitions_requests=new
    )


def _request(config: ClusterConfig, snapshot: CollectionSnapshot, refresh: Refresh) -> dg.RunRequest:
    """One execution per (configuration, version) and one assignment per (configuration, version)."""
    tags = {
        VERSION_TAG: snapshot.version,
        TRIGGER_TAG: refresh.trigger,
        TRIGGER_REASON_TAG: refresh.reason,
        **configuration_tags(config),
    }
    assign = refresh.action == "assign"
    return dg.RunRequest(
        run_key=f"{config.partition_key}@{snapshot.version}" + (":assign" if assign else ""),
        job_name=ASSIGNMENT_JOB_NAME if assign else CLUSTER_EXECUTION_JOB_NAME,
        partition_key=config.partition_key,
        tags={**tags, RUN_KIND_TAG: ASSIGNMENT_KIND} if assign else tags,
    )
