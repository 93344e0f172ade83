"""New documents assigned to the latest execution's clusters, without refitting (``core.incremental``).

Each materialization writes one assignments part keyed by the collection version it brings up to date
(pinned by the change sensor's ``collection_version`` tag; without it, the collection as it is now) and
refreshes the configuration's enrichment table. It reads the execution's small stored model and the new
parts' embeddings only.
"""

from collections import Counter

import dagster as dg

from cluster_pipeline.assets.run_scope import configuration_of
from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.incremental.new_documents import AssignmentRun, assign_new_documents
from cluster_pipeline.core.quality.verdict import percent
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.jobs import ASSIGNMENT_ASSET
from cluster_pipeline.partitions import cluster_configs_partitions
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.settings import ASSIGNMENT_KIND, RUN_KIND_TAG, VERSION_TAG


@dg.asset(
    name=ASSIGNMENT_ASSET,
    partitions_def=cluster_configs_partitions,
    group_name="clustering",
    deps=["execution_result"],
    kinds={"parquet"},
    description="Documents added since the latest completed execution, assigned to its clusters without refitting "
    "(nearest centroid in the embedding space, a Gaussian mixture's own predict), each flagged novel when farther "
    "from its cluster than 95 % of the cluster's members.",
)
def new_document_assignments(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    if context.dagster_run.tags.get(RUN_KIND_TAG) != ASSIGNMENT_KIND:  # launched from the UI: not an execution
        context.instance.add_run_tags(context.run_id, {RUN_KIND_TAG: ASSIGNMENT_KIND})
    store = lake.get_lake()
    config = configuration_of(context, store)
    try:
        snapshot = CollectionStore(store).snapshot(config.namespace, config.collection)
        if pinned := context.dagster_run.tags.get(VERSION_TAG):
            snapshot = snapshot.as_of(pinned) or snapshot
        run = assign_new_documents(store, config, snapshot)
    except ClusterPipelineError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    base = run.baseline.result.run_id
    if run.part is None:
        context.log.info(f"Nothing new to assign at {run.snapshot.version}: every document has a cluster of {base}.")
    else:
        context.log.info(
            f"Assigned {run.num_assigned} documents to the clusters of {base} ({run.method}); {run.num_novel} novel."
        )
    return dg.MaterializeResult(metadata=_metadata(run, store))


def _metadata(run: AssignmentRun, lake: Lake) -> dict[str, object]:
    base = run.baseline
    enrichment = lake.enrichment_key(base.result.namespace, base.result.cluster_id)
    assigned = base.assigned + run.num_assigned
    novel = base.novel + run.num_novel
    metadata: dict[str, object] = {
        "run_id": base.result.run_id,
        "collection_version": run.snapshot.version,
        "assigned": run.num_assigned,
        "novel": run.num_novel,
        "assigned_since_fit": assigned,
        "novel_since_fit": novel,
        "novel_share_since_fit": percent(novel / assigned) if assigned else "-",
        "seconds": round(run.seconds, 3),
        "enrichment_path": dg.MetadataValue.path(lake.storage.uri(enrichment)),
    }
    if run.part is not None:
        metadata["method"] = run.method or "-"
        metadata["assignments_path"] = dg.MetadataValue.path(lake.storage.uri(run.part.key))
    if run.assigned is not None and len(run.assigned.labels):
        names = {c.cluster_id: c.label for c in base.result.centroids or []}
        counts = Counter(f"cl_{index}" if index >= 0 else "none" for index in run.assigned.labels.tolist())
        metadata["per_cluster"] = dg.MetadataValue.json(
            {name: {"label": names.get(name), "documents": count} for name, count in sorted(counts.items())}
        )
    return metadata
