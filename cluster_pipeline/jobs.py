"""The one job: execute a cluster configuration (a partition) through the clustering assets.

The assets are one step (``assets.clustering``), run in the run's own process: no step process to
start, as for every asset materialization of this code location (``definitions.py`` makes the
in-process executor the default, so a materialization launched from the UI runs the same way).
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
