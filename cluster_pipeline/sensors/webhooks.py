"""Announce every finished execution to its webhooks: once per URL, after the result is committed.

Every execution run that ended since the last tick, whatever started it, is POSTed (``core.pipeline.webhooks``)
once its ExecutionResult, completed or failed, is in the lake. Runs still without a result and URLs still
to retry stay in the cursor; the delivery record in the lake makes a URL get an execution once. Attempts
start only for ``max_tick_seconds`` and each request is bounded by ``timeout_seconds``, so a dead
receiver slows nothing but this sensor.
"""

import json
import time

import dagster as dg

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.pipeline.webhooks import DeliveryRecord, deliver, event_of
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.lifecycle.records import finished_executions
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.webhooks import WebhookResource
from cluster_pipeline.settings import SENSOR_INTERVAL_SECONDS

OVERLAP_SECONDS = 60.0  # run storage's clock and this one may differ a little; records make repeats harmless
RESULT_WAIT_SECONDS = 3600.0  # a run without a result after this long is dropped (it belongs to no configuration)


@dg.sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="POSTs each finished execution (completed or failed), signed, to its configuration's webhooks.",
)
def webhook_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, webhooks: WebhookResource):
    now = time.time()
    state = json.loads(context.cursor) if context.cursor else {}
    since = state.get("evaluated_at", now - webhooks.lookback_seconds) - OVERLAP_SECONDS
    pending: dict[str, list] = state.get("pending", {})
    store = lake.get_lake()
    for run, namespace, cluster_id in finished_executions(context.instance, store, since):
        pending.setdefault(run_id_from_dagster_run(run.run_id), [namespace, cluster_id, now])
    if not pending or not webhooks.secret:
        context.update_cursor(json.dumps({"evaluated_at": now, "pending": {}}))
    if not pending:
        return dg.SkipReason("No finished execution to announce.")
    if not webhooks.secret:
        if webhooks.shared_urls() or any(c.webhooks for c in ConfigStore(store).list_all()):
            context.log.warning(
                "Webhooks are configured but CLUSTER_PIPELINE_WEBHOOK_SECRET is not set: nothing is sent."
            )
        return dg.SkipReason("No webhook secret (CLUSTER_PIPELINE_WEBHOOK_SECRET): executions are not announced.")
    waiting, lines = _announce(store, pending, webhooks, now)
    for line in lines:
        context.log.info(line)
    context.update_cursor(json.dumps({"evaluated_at": now, "pending": waiting}, sort_keys=True))
    return dg.SkipReason(f"{len(lines)} webhook attempts; {len(waiting)} executions still to announce.")


def _announce(lake: Lake, pending: dict[str, list], webhooks: WebhookResource, now: float) -> tuple[dict, list[str]]:
    """Attempt every due delivery; return what stays pending and the log lines."""
    results, settings, deadline = ResultStore(lake), webhooks.settings(), now + webhooks.max_tick_seconds
    configs: dict[tuple[str, str], ClusterConfig | None] = {}
    waiting, lines = {}, []
    for run_id, (namespace, cluster_id, first_seen) in pending.items():
        if not results.exists(namespace, cluster_id, run_id):
            if now - first_seen < RESULT_WAIT_SECONDS:  # its failed result is still to be recorded
                waiting[run_id] = [namespace, cluster_id, first_seen]
            continue
        if (namespace, cluster_id) not in configs:
            try:
                configs[namespace, cluster_id] = ConfigStore(lake).get(namespace, cluster_id)
            except ClusterPipelineError:
                configs[namespace, cluster_id] = None  # deleted or unreadable: nobody to notify
        config = configs[namespace, cluster_id]
        urls = webhooks.shared_urls() + (config.webhooks if config else [])
        if not urls:
            continue
        result = results.get(namespace, run_id, cluster_id)
        key = lake.webhook_delivery_key(namespace, cluster_id, run_id)
        stored = lake.storage.exists(key)
        record = (
            DeliveryRecord.from_json(lake.storage.read_bytes(key))
            if stored
            else DeliveryRecord(run_id, event_of(result))
        )
        attempts = deliver(
            record, urls, result, webhooks.secret or "", settings, result_uri=results.uri(result), deadline=deadline
        )
        if attempts or not stored:
            lake.storage.write_replace(key, record.to_json())
        lines += attempts
        if not record.settled(settings):
            waiting[run_id] = [namespace, cluster_id, first_seen]
    return waiting, lines
