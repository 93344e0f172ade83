"""What changes about an execution after its run: names people gave its clusters or the run itself,
recorded on its ``execution_result`` partition as an asset observation, so the Dagster UI shows them
beside the materialization (which, like the result file, never changes)."""

import dagster as dg
from dagster import DagsterInstance

from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME


def record_annotations(instance: DagsterInstance, result: ExecutionResult) -> None:
    """Observe the execution's annotations on its partition (skipped when the partition is gone)."""
    configuration = result.configuration or {}
    partition = f"{result.namespace}.{configuration.get('name') or result.cluster_id}"
    if not instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, partition):
        return
    labels = {c.cluster_id: c.label for c in result.centroids or []}
    metadata = {
        "run_id": result.run_id,
        "run_name": result.run_name or "",
        "label_overrides": dg.MetadataValue.json(result.label_overrides or {}),
        "labels": dg.MetadataValue.json(labels),
    }
    instance.report_runless_asset_event(
        dg.AssetObservation(asset_key="execution_result", partition=partition, metadata=metadata)
    )
