"""The jobs: execute a cluster configuration (a partition) through the clustering assets, and assign
a configuration's new documents to its latest execution's clusters; both run in process, as every run of
the code location (``definitions.py``). The assignment asset shares the ``clustering`` group and
partitions but not the execution job: an assignment never refits, and an execution never waits for one.
"""

import dagster as dg

from cluster_pipeline.partitions import cluster_configs_partitions
from cluster_pipeline.settings import ASSIGNMENT_KIND, RUN_KIND_TAG

CLUSTER_EXECUTION_JOB_NAME = "cluster_execution"
ASSIGNMENT_JOB_NAME = "assign_new_documents"
EXECUTION_ASSETS = (
    "collection_embeddings",
    "cluster_assignments",
    "cluster_quality",
    "cluster_labels",
    "execution_result",
)
ASSIGNMENT_ASSET = "new_document_assignments"

cluster_execution_job = dg.define_asset_job(
    CLUSTER_EXECUTION_JOB_NAME,
    selection=dg.AssetSelection.assets(*EXECUTION_ASSETS),
    partitions_def=cluster_configs_partitions,
    description="Load a collection's embeddings, cluster them, score and name the clusters, write the result.",
)

assignment_job = dg.define_asset_job(
    ASSIGNMENT_JOB_NAME,
    selection=dg.AssetSelection.assets(ASSIGNMENT_ASSET),
    partitions_def=cluster_configs_partitions,
    description="Assign the documents added since the latest execution to its clusters (no refit).",
)


def is_execution_run(run: dg.DagsterRun) -> bool:
    """Whether a run of a configuration's partition executes it (writes an ExecutionResult), rather than
    only assigning new documents or evaluating checks: by its job, its kind tag (set by the change sensor
    and the assignment asset) or its selection (any of the five assets; an implicit asset job's run may
    select none, a run of checks alone selects no asset)."""
    if run.job_name == ASSIGNMENT_JOB_NAME or run.tags.get(RUN_KIND_TAG) == ASSIGNMENT_KIND:
        return False
    if not run.asset_selection:
        return not run.asset_check_selection
    return any(dg.AssetKey(name) in run.asset_selection for name in EXECUTION_ASSETS)
