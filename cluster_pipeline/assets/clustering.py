"""The clustering assets, one partition per configuration:

collection_embeddings → cluster_assignments → cluster_quality → cluster_labels → execution_result

Each asset is thin glue over one core step. The matrix itself never passes through the IO
manager: steps pass small handles (snapshot, labels, fitted preprocessing) and re-open the
prepared space from the process-local cache (one load per run with the in-process executor).
"""

import time

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from cluster_pipeline.assets.run_scope import RunScope
from cluster_pipeline.core.clustering import FittedClustering, check_embeddings, fit_clustering
from cluster_pipeline.core.collections import CollectionSnapshot
from cluster_pipeline.core.config import QualityChecks
from cluster_pipeline.core.execution import (
    SPACE_CACHE,
    LabelingOutcome,
    OfflineLabeler,
    publish_result,
    sample_clustering,
    space_key,
)
from cluster_pipeline.core.metrics import QualityMetrics, compute_metrics
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.quality_checks import CHECK_NAMES, evaluate_checks
from cluster_pipeline.core.report import markdown_summary
from cluster_pipeline.core.results import ExecutionResult
from cluster_pipeline.core.streaming import fit_streaming, gather_rows, matrix_bytes, needs_streaming
from cluster_pipeline.partitions import cluster_configs_partitions
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.llm import LLMResource

GROUP = "clustering"


def _progress(context: AssetExecutionContext) -> Progress:
    """Stage progress (documents, ETA) into the run's Dagster log, every 5 s at most."""
    return Progress([lambda event: context.log.info(event.message())], min_interval=5.0)


def _load_space(scope: RunScope, snapshot: CollectionSnapshot, fitted: FittedClustering) -> np.ndarray:
    """The prepared matrix, or for a streamed clustering the prepared metrics sample."""
    preparation = fitted.preparation
    if fitted.extras.get("streamed"):
        rows = fitted.extras["sample_rows"]
        return SPACE_CACHE.get(
            space_key(snapshot, scope.config.feature, f"sample:{preparation.fingerprint}"),
            lambda: gather_rows(scope.collections, snapshot, scope.config.feature, rows, preparation),
        )
    return SPACE_CACHE.get(
        space_key(snapshot, scope.config.feature, preparation.fingerprint),
        lambda: preparation.apply(scope.collections.load_embeddings(snapshot, scope.config.feature), copy=False),
    )


@asset(partitions_def=cluster_configs_partitions, group_name=GROUP, kinds={"parquet"})
def collection_embeddings(context: AssetExecutionContext, lake: LakeResource) -> Output[CollectionSnapshot]:
    """A frozen snapshot of the configuration's collection, with its embedding matrix checked."""
    scope = RunScope.of(context, lake.get_lake())
    with scope.failing_execution():
        scope.checkpoint("load")
        started = time.perf_counter()
        snapshot = scope.collections.snapshot(scope.config.namespace, scope.config.collection)
        streamed = needs_streaming(snapshot, scope.config)
        with scope.failing_execution(snapshot):
            if streamed:  # over the memory budget: the fit streams the parts itself
                matrix = np.empty((0, snapshot.features.get(scope.config.feature, 0)), dtype=np.float32)
            else:
                matrix = SPACE_CACHE.get(
                    space_key(snapshot, scope.config.feature, "raw"),
                    lambda: scope.collections.load_embeddings(snapshot, scope.config.feature, _progress(context)),
                )
                check_embeddings(matrix)
    return Output(
        snapshot,
        metadata={
            "run_id": scope.run_id,
            "collection": f"{snapshot.namespace}/{snapshot.collection}",
            "collection_version": snapshot.version,
            "num_documents": snapshot.num_documents,
            "dimensions": int(matrix.shape[1]),
            "parts": len(snapshot.parts),
            "matrix_mb": round(matrix_bytes(snapshot, scope.config.feature) / 2**20, 1),
            "streamed": streamed,
            "load_seconds": round(time.perf_counter() - started, 3),
        },
    )


@asset(partitions_def=cluster_configs_partitions, group_name=GROUP, kinds={"scikitlearn"})
def cluster_assignments(
    context: AssetExecutionContext, lake: LakeResource, collection_embeddings: CollectionSnapshot
) -> Output[FittedClustering]:
    """The configured algorithm fitted on the prepared vectors: a cluster (or noise) per document."""
    scope = RunScope.of(context, lake.get_lake())
    snapshot = collection_embeddings
    raw_key = space_key(snapshot, scope.config.feature, "raw")
    progress = _progress(context)
    with scope.failing_execution(snapshot):
        scope.checkpoint("fit")
        if needs_streaming(snapshot, scope.config):
            streamed = fit_streaming(scope.collections, snapshot, scope.config, progress)
            fitted = streamed.fitted
            fitted.extras.update(metrics=streamed.metrics, sample_rows=streamed.sample_rows)
            space = streamed.sample_space
            SPACE_CACHE.clear()
            SPACE_CACHE.get(
                space_key(snapshot, scope.config.feature, f"sample:{fitted.preparation.fingerprint}"), lambda: space
            )
        else:
            matrix = SPACE_CACHE.get(
                raw_key, lambda: scope.collections.load_embeddings(snapshot, scope.config.feature, progress)
            )
            SPACE_CACHE.clear()  # normalised in place below: the raw entry would lie
            fitted, space = fit_clustering(matrix, scope.config, copy=False, progress=progress)
            SPACE_CACHE.get(space_key(snapshot, scope.config.feature, fitted.preparation.fingerprint), lambda: space)
    return Output(
        fitted,
        metadata={
            "run_id": scope.run_id,
            "algorithm": scope.config.algorithm,
            "parameters": MetadataValue.json(fitted.parameters),
            "num_clusters": fitted.num_clusters,
            "num_noise": fitted.num_noise,
            "clustered_dimensions": int(space.shape[1]),
            "fit_seconds": round(fitted.fit_seconds, 3),
            "fit_method": str(fitted.extras.get("fit_method", scope.config.algorithm)),
        },
    )


@asset(partitions_def=cluster_configs_partitions, group_name=GROUP)
def cluster_quality(
    context: AssetExecutionContext,
    lake: LakeResource,
    collection_embeddings: CollectionSnapshot,
    cluster_assignments: FittedClustering,
) -> Output[QualityMetrics | None]:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz in the clustered space, noise left out."""
    scope = RunScope.of(context, lake.get_lake())
    with scope.failing_execution(collection_embeddings):
        if cluster_assignments.extras.get("streamed"):
            metrics = cluster_assignments.extras["metrics"]  # computed while streaming
        else:
            space = _load_space(scope, collection_embeddings, cluster_assignments)
            metrics = compute_metrics(
                space,
                cluster_assignments.labels,
                metric=cluster_assignments.metric,
                sample_size=scope.config.metric_sample_size,
            )
    metadata: dict[str, object] = {"run_id": scope.run_id}
    if metrics is None:
        metadata["description"] = "Metrics not available (fewer than 2 clusters)"
    else:
        metadata.update(
            silhouette_score=metrics.silhouette_score,
            davies_bouldin_index=metrics.davies_bouldin_index,
            calinski_harabasz_score=metrics.calinski_harabasz_score,
            description=metrics.description,
            silhouette_sample_size=metrics.silhouette_sample_size,
        )
    return Output(metrics, metadata=metadata)


@asset(partitions_def=cluster_configs_partitions, group_name=GROUP)
def cluster_labels(
    context: AssetExecutionContext,
    lake: LakeResource,
    llm: LLMResource,
    collection_embeddings: CollectionSnapshot,
    cluster_assignments: FittedClustering,
) -> Output[LabelingOutcome]:
    """A label, a one-sentence summary and keywords for every cluster: by the LLM where one is
    configured (each cluster it fails keeps its offline label), else offline by c-TF-IDF."""
    scope = RunScope.of(context, lake.get_lake())
    with scope.failing_execution(collection_embeddings):
        scope.checkpoint("labels")
        space = _load_space(scope, collection_embeddings, cluster_assignments)
        fitted = cluster_assignments
        if fitted.extras.get("streamed"):  # label from the metrics sample, as execute() does
            rows = fitted.extras["sample_rows"]
            documents = scope.collections.take_documents(collection_embeddings, rows)
            fitted = sample_clustering(fitted, rows)
        else:
            documents = scope.collections.load_documents(collection_embeddings)
        labeler = (llm.labeler(scope.lake) if scope.config.labeling.use_llm else None) or OfflineLabeler()
        outcome = labeler.label(documents, fitted, space, scope.config)
    metadata: dict[str, object] = {
        "run_id": scope.run_id,
        "labels": MetadataValue.json({f"cl_{i}": label.label for i, label in sorted(outcome.labels.items())}),
    }
    if outcome.usage is not None:
        metadata.update(llm_labels_metadata(outcome))
        for error in outcome.errors or []:
            context.log.warning(f"{error['cluster_id']} keeps its offline label: {error['error']}")
    return Output(outcome, metadata=metadata)


def llm_labels_metadata(outcome: LabelingOutcome) -> dict[str, object]:
    """Token usage and fallbacks of the LLM labeling, for the UI (errors are already redacted)."""
    usage = outcome.usage or {}
    errors = outcome.errors or []
    return {
        "llm_model": str(usage.get("model", "")),
        "llm_calls": int(usage.get("calls", 0)),
        "llm_cache_hits": int(usage.get("cache_hits", 0)),
        "llm_prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "llm_completion_tokens": int(usage.get("completion_tokens", 0)),
        "llm_total_tokens": int(usage.get("total_tokens", 0)),
        "llm_fallbacks": len(errors),
        "llm_labeling_errors": MetadataValue.json(errors),
    }


def _clusters_table(result: ExecutionResult) -> MetadataValue:
    return MetadataValue.table(
        records=[
            TableRecord(
                {
                    "cluster_id": c.cluster_id,
                    "members": c.num_members,
                    "label": c.label,
                    "keywords": ", ".join(c.keywords),
                }
            )
            for c in result.centroids or []
        ],
        schema=TableSchema(
            columns=[
                TableColumn("cluster_id", "string"),
                TableColumn("members", "int"),
                TableColumn("label", "string"),
                TableColumn("keywords", "string"),
            ]
        ),
    )


def _check_results(result: ExecutionResult, checks: QualityChecks) -> list[AssetCheckResult]:
    severity = AssetCheckSeverity.ERROR if checks.blocking else AssetCheckSeverity.WARN
    return [
        AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            severity=severity,
            description=outcome.description,
            metadata={"value": outcome.value, "threshold": outcome.threshold, "run_id": result.run_id},
        )
        for outcome in evaluate_checks(result, checks)
    ]


CHECK_DESCRIPTIONS = {
    "silhouette_threshold": "Silhouette at least the configuration's checks.min_silhouette.",
    "davies_bouldin_threshold": "Davies–Bouldin at most checks.max_davies_bouldin.",
    "largest_cluster_fraction": "No single cluster holds more than checks.max_cluster_fraction of the points.",
    "noise_fraction": "Noise stays below checks.max_noise_fraction of the points.",
    "ari_vs_previous": "Adjusted Rand index against the previous execution at least checks.min_ari_vs_previous.",
}


@asset(
    partitions_def=cluster_configs_partitions,
    group_name=GROUP,
    kinds={"parquet"},
    check_specs=[
        AssetCheckSpec(name, asset="execution_result", description=CHECK_DESCRIPTIONS[name]) for name in CHECK_NAMES
    ],
)
def execution_result(
    context: AssetExecutionContext,
    lake: LakeResource,
    collection_embeddings: CollectionSnapshot,
    cluster_assignments: FittedClustering,
    cluster_quality: QualityMetrics | None,
    cluster_labels: LabelingOutcome,
) -> MaterializeResult:
    """The immutable ExecutionResult Parquet file of this run, its pictures and per-document assignments."""
    scope = RunScope.of(context, lake.get_lake())
    snapshot = collection_embeddings
    with scope.failing_execution(snapshot):
        scope.checkpoint("write")
        streamed = bool(cluster_assignments.extras.get("streamed"))
        space = _load_space(scope, snapshot, cluster_assignments)
        published = publish_result(
            scope.results,
            scope.base(snapshot),
            scope.collections.load_document_ids(snapshot),
            cluster_assignments,
            space,
            cluster_quality,
            cluster_labels,
            {"fit": round(cluster_assignments.fit_seconds, 4)},
            scope.config.plot_projection,
            sample_rows=cluster_assignments.extras["sample_rows"] if streamed else None,
        )
    SPACE_CACHE.clear()
    result = published.result
    metrics = result.metrics or {}
    assignments = scope.results.assignments_key(result.namespace, result.cluster_id, result.run_id)
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(markdown_summary(result, published.images)),
            "run_id": result.run_id,
            "status": result.status,
            "num_points": result.num_points,
            "num_clusters": result.num_clusters,
            "num_noise": result.num_noise,
            "silhouette_score": metrics.get("silhouette_score"),
            "davies_bouldin_index": metrics.get("davies_bouldin_index"),
            "calinski_harabasz_score": metrics.get("calinski_harabasz_score"),
            "ari_vs_previous": (result.drift or {}).get("adjusted_rand_index"),
            "quality": metrics.get("description", "Metrics not available (fewer than 2 clusters)"),
            "clusters": _clusters_table(result),
            "result_path": MetadataValue.path(published.uri),
            "assignments_path": MetadataValue.path(scope.lake.storage.uri(assignments)),
            **{f"{name}_png": MetadataValue.path(uri) for name, uri in result.artifacts.items()},
        },
        check_results=_check_results(result, scope.config.checks),
    )


CLUSTERING_ASSETS = [collection_embeddings, cluster_assignments, cluster_quality, cluster_labels, execution_result]
