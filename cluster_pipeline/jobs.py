"""The one job: execute a cluster configuration (a partition) through all clustering assets.

It runs in process: the steps share one loaded matrix (see ``SpaceCache``) instead of paying a
Python start-up and a matrix load per step.
"""

from dagster import AssetSelection, define_asset_job, in_process_executor

from cluster_pipeline.partitions import cluster_configs_partitions

CLUSTER_EXECUTION_JOB_NAME = "cluster_execution"

cluster_execution_job = define_asset_job(
    CLUSTER_EXECUTION_JOB_NAME,
    selection=AssetSelection.groups("clustering"),
    partitions_def=cluster_configs_partitions,
    executor_def=in_process_executor,
    description="Load a collection's embeddings, cluster them, score and name the clusters, write the result.",
)
