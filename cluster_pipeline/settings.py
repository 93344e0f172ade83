"""Automation settings and run tags. Sensor cadence: 30 s by default; tests shorten it with CLUSTER_PIPELINE_SENSOR_INTERVAL."""

import os

SENSOR_INTERVAL_SECONDS = int(os.environ.get("CLUSTER_PIPELINE_SENSOR_INTERVAL", "30"))
# what started an execution (manual, nightly, schedule, collection_change, novelty, growth), and why, in words
TRIGGER_TAG = "cluster_pipeline/trigger"
TRIGGER_REASON_TAG = "cluster_pipeline/trigger_reason"
# runs without a trigger tag: the CLI's execute, the UI's Materialize, `dagster asset materialize`
MANUAL_TRIGGER = "manual"
VERSION_TAG = "cluster_pipeline/collection_version"
PARTITION_TAG = "dagster/partition"
RUN_KIND_TAG = "cluster_pipeline/run_kind"  # "assignment" on runs that only assign new documents (no ExecutionResult)
ASSIGNMENT_KIND = "assignment"
