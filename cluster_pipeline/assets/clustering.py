"""The clustering assets, one partition per configuration, materialized together by one step:

collection_embeddings → cluster_assignments → cluster_quality ─┐
                                            └→ cluster_labels ──┴→ execution_result

The step's body is ``run_execution``, the only chain of clustering steps. Five steps would cost a
process (or at least a step) each, a matrix cached or reloaded between them, and intermediates pickled
through an IO manager (to S3 in the s3 deployment); instead each asset reports a ``MaterializeResult``
and the data lives in the lake. A selection of some assets runs the whole execution and materializes
all five (the unselected ones as logged materializations): none means anything without the others.

The asset checks are partitioned like the assets. The step is subsettable only so that a check can go
unreported: Dagster requires every check of a non-subsettable step to report, and a check whose
threshold the configuration does not set, or whose value does not exist yet, is skipped (the summary
says why) rather than reported as passed.
"""

import base64
import json
import time
import warnings
from functools import partial

import dagster as dg

from cluster_pipeline.assets.run_scope import RunScope
from cluster_pipeline.core.pipeline.execution import Execution, run_execution
from cluster_pipeline.core.progress import Progress, ProgressEvent
from cluster_pipeline.core.quality.checks import (
    CHECK_NAMES,
    THRESHOLD_FIELDS,
    CheckOutcome,
    QualityChecks,
    evaluate_checks,
    significant,
)
from cluster_pipeline.core.render.report import clip, markdown_summary
from cluster_pipeline.core.store.history import HistoryQuery, list_history
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.lifecycle.records import record_snapshot
from cluster_pipeline.partitions import cluster_configs_partitions
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.llm import LLMResource

CHECK_DESCRIPTIONS = {
    "silhouette_threshold": "Silhouette at least the configuration's checks.min_silhouette.",
    "davies_bouldin_threshold": "Davies–Bouldin at most checks.max_davies_bouldin.",
    "largest_cluster_fraction": "No single cluster holds more than checks.max_cluster_fraction of the points "
    "(default 0.5).",
    "noise_fraction": "Noise stays below checks.max_noise_fraction of the points (default 0.5).",
    "ari_vs_previous": "Adjusted Rand index against the previous execution at least checks.min_ari_vs_previous.",
    "coherence_threshold": "Mean NPMI coherence of the clusters' top-10 words at least checks.min_coherence.",
    "diversity_threshold": "Topic diversity (share of distinct words among the top 10s) at least checks.min_diversity.",
}
SKIPPED_NOTE = (
    " Skipped when the configuration sets no checks.{field}, or the value does not exist for the execution "
    "(the summary says which)."
)
KEYWORDS_CHARS, LABEL_CHARS = 40, 40  # the clusters table fits the metadata panel
LLM_COUNTS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "total_tokens")

SPECS = [
    dg.AssetSpec(
        "collection_embeddings",
        description="A frozen snapshot of the configuration's collection, with its embedding matrix checked.",
        kinds={"parquet"},
    ),
    dg.AssetSpec(
        "cluster_assignments",
        deps=["collection_embeddings"],
        description="The configured algorithm fitted on the prepared vectors: a cluster (or noise) per document.",
        kinds={"faiss", "scikitlearn"},
    ),
    dg.AssetSpec(
        "cluster_quality",
        deps=["cluster_assignments"],
        description="Silhouette, Davies–Bouldin and Calinski–Harabasz in the embedding space, noise left out.",
    ),
    dg.AssetSpec(
        "cluster_labels",
        deps=["cluster_assignments"],
        description="A label, a one-sentence summary and keywords for every cluster: by the LLM where one is "
        "configured (each cluster it fails keeps its offline label), else offline by distinctive keywords.",
    ),
    dg.AssetSpec(
        "execution_result",
        deps=["cluster_quality", "cluster_labels"],
        description="The immutable ExecutionResult Parquet file of this run, its pictures and per-document "
        "assignments.",
        kinds={"parquet"},
    ),
]


with warnings.catch_warnings():
    # Dagster 1.13 calls partitioned check specs a preview; without this the notice would reach every
    # CLI command's stderr (the README says the feature is Dagster's preview).
    warnings.simplefilter("ignore", dg.PreviewWarning)
    CHECK_SPECS = [
        dg.AssetCheckSpec(
            name,
            asset="execution_result",
            description=CHECK_DESCRIPTIONS[name] + SKIPPED_NOTE.format(field=THRESHOLD_FIELDS[name]),
            partitions_def=cluster_configs_partitions,
        )
        for name in CHECK_NAMES
    ]

LONG_STAGE_SECONDS = 5.0


def _progress(context: dg.AssetExecutionContext) -> Progress:
    """Progress of long stages (documents, ETA) into the run's Dagster log, every 5 s at most. Shorter
    stages log nothing: every log line is an event Dagster commits to its storage (~20 ms each in
    SQLite here), and a one-second execution needs no ETA."""

    def sink(event: ProgressEvent) -> None:
        if event.elapsed >= LONG_STAGE_SECONDS:
            context.log.info(event.message())

    return Progress([sink], min_interval=LONG_STAGE_SECONDS)


@dg.multi_asset(
    name="cluster_execution_step",
    specs=SPECS,
    check_specs=CHECK_SPECS,
    partitions_def=cluster_configs_partitions,
    can_subset=True,
    group_name="clustering",
)
def clustering_assets(context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource):  # noqa: ANN201
    """Run the configuration's execution and report each asset (checks run alone: the latest result's)."""
    scope = RunScope.of(context, lake.get_lake())
    checks = {key.name for key in context.selected_asset_check_keys}
    if not context.selected_asset_keys:
        yield from _check_latest(scope, checks)
        return
    with scope.failing_execution():
        execution = run_execution(
            scope.lake,
            scope.config,
            scope.base.run_id,
            labeler=llm.labeler(scope.lake, scope.config.namespace),
            created_at=scope.base.created_at,
            dagster_run_id=scope.base.dagster_run_id,
            progress=_progress(context),
            timings={"dagster": round(time.time() - scope.started_at, 4)},
            on_snapshot=partial(record_snapshot, scope.instance, context.dagster_run),
            trigger=scope.base.trigger,
            trigger_reason=scope.base.trigger_reason,
        )
    for error in execution.labeling.errors or []:
        context.log.warning(f"{error['cluster_id']} keeps its offline label: {error['error']}")
    if execution.enrichment_error:
        context.log.warning(
            f"The result is committed; its enrichment table was not refreshed: {execution.enrichment_error}"
        )
    outcomes = evaluate_checks(execution.result, scope.config.checks)
    evaluated = [outcome for outcome in outcomes if outcome.name in checks]
    for reported in _materializations(execution, scope, outcomes, evaluated):
        if reported.asset_key in context.selected_asset_keys:
            yield reported
        else:  # a launch of some of the five still materializes all five: the step computed them all
            partition, metadata = context.partition_key, reported.metadata
            context.log_event(dg.AssetMaterialization(reported.asset_key, partition=partition, metadata=metadata))


def _check_latest(scope: RunScope, names: set[str]) -> list[dg.AssetCheckResult]:
    """The checks ``names`` on the partition's latest completed ExecutionResult."""
    page = list_history(
        scope.results, scope.config.namespace, scope.config.cluster_id, HistoryQuery(statuses=["completed"], limit=1)
    )
    if not page.results:
        raise dg.Failure(
            f"{scope.config.display_name} has no completed execution to check yet: materialize the partition first.",
            allow_retries=False,
        )
    latest = page.results[0]
    outcomes = [o for o in evaluate_checks(latest, scope.config.checks) if o.name in names]
    return _check_results(latest, scope.config.checks, outcomes)


def _materializations(
    execution: Execution, scope: RunScope, outcomes: list[CheckOutcome], evaluated: list[CheckOutcome]
) -> list[dg.MaterializeResult]:
    """What each asset shows: ``outcomes`` are all five checks (the summary lists them), ``evaluated``
    the selected ones, reported as check results."""
    return [
        dg.MaterializeResult(asset_key="collection_embeddings", metadata=_embeddings_metadata(execution)),
        dg.MaterializeResult(asset_key="cluster_assignments", metadata=_assignments_metadata(execution, scope)),
        dg.MaterializeResult(asset_key="cluster_quality", metadata=_quality_metadata(execution)),
        dg.MaterializeResult(asset_key="cluster_labels", metadata=_labels_metadata(execution)),
        dg.MaterializeResult(
            asset_key="execution_result",
            metadata=_result_metadata(execution, scope, outcomes),
            check_results=_check_results(execution.result, scope.config.checks, evaluated),
        ),
    ]


def _rounded_metrics(result: ExecutionResult) -> dict[str, float | None]:
    return {name: significant(value) for name, value in (result.metrics or {}).items() if not isinstance(value, str)}


def _verdict(result: ExecutionResult) -> dict[str, str]:
    """What the metrics were computed on, how to read them, and why a run has fewer than 2 clusters."""
    verdict = {"coverage": result.coverage, "quality_note": result.quality_note, "warning": result.warning}
    return {name: value for name, value in verdict.items() if value is not None}


def _picture(text: str, png: bytes) -> dg.MetadataValue:
    """A picture as its own markdown entry, one click away in the UI: Dagster 1.13 has no image metadata
    type, and shows markdown inline only under 1,000 characters (a PNG is far more)."""
    return dg.MetadataValue.md(f"![{text}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _embeddings_metadata(execution: Execution) -> dict[str, object]:
    snapshot, dimensions = execution.snapshot, execution.dimensions
    return {
        "run_id": execution.result.run_id,
        "collection": f"{snapshot.namespace}/{snapshot.collection}",
        "collection_version": snapshot.version,
        "num_documents": snapshot.num_documents,
        "dimensions": dimensions,
        "parts": len(snapshot.parts),
        "matrix_mb": round(snapshot.num_documents * dimensions * 4 / 2**20, 1),
        "streamed": execution.streamed,
        "load_seconds": significant(execution.result.timings.get("load", 0.0)),
    }


def _assignments_metadata(execution: Execution, scope: RunScope) -> dict[str, object]:
    """The fit: reduction, automatic k (its curve as a plot), topic reduction and noise reassignment."""
    fitted, result = execution.fitted, execution.result
    metadata: dict[str, object] = {
        "run_id": result.run_id,
        "algorithm": scope.config.algorithm,
        "parameters": dg.MetadataValue.json(json.loads(json.dumps(fitted.parameters, default=str))),  # numpy numbers
        "num_clusters": fitted.num_clusters,
        "num_noise": fitted.num_found_noise,
        "clustered_dimensions": int(fitted.reduction.get("n_components") or execution.dimensions),
        "fit_seconds": significant(result.timings.get("fit", 0.0)),
        "fit_method": str(fitted.extras.get("fit_method", scope.config.algorithm)),
        "engine": fitted.engine,
        "reduction": dg.MetadataValue.json(result.reduction or {"method": "none"}),
    }
    if result.auto_k:
        metadata["auto_k"] = dg.MetadataValue.json(result.auto_k)
        metadata["auto_k_chosen"] = int(result.auto_k["chosen"])
        if "auto_k" in execution.images:
            metadata["auto_k_curve"] = _picture("silhouette by k", execution.images["auto_k"])
    if result.cluster_splits:
        metadata["cluster_splits"] = dg.MetadataValue.json(result.cluster_splits)
    if result.topic_reduction:
        metadata["topic_reduction"] = dg.MetadataValue.json(result.topic_reduction)
    if result.num_noise_reassigned:
        metadata["num_noise_reassigned"] = result.num_noise_reassigned
    return metadata


def _quality_metadata(execution: Execution) -> dict[str, object]:
    result = execution.result
    quality: dict[str, object] = {"run_id": result.run_id}
    if execution.metrics is not None:
        quality.update(
            _rounded_metrics(result),
            description=(result.metrics or {}).get("description"),
            silhouette_sample_size=execution.metrics.silhouette_sample_size,
        )
    return {**quality, **_verdict(result)}


def _labels_metadata(execution: Execution) -> dict[str, object]:
    """The labels, the topic tree and the topics over time (their pictures are ``execution_result``'s),
    and the LLM's token usage and fallbacks (its errors are already redacted)."""
    result, usage, errors = execution.result, execution.labeling.usage, execution.labeling.errors or []
    labels: dict[str, object] = {
        "run_id": result.run_id,
        "labels": dg.MetadataValue.json({c.cluster_id: c.label for c in result.centroids or []}),
    }
    if result.hierarchy:
        labels["hierarchy_tree"] = dg.MetadataValue.json(result.hierarchy)
    if result.topics_over_time:
        labels["topics_over_time"] = dg.MetadataValue.json(result.topics_over_time)
    if usage is not None:
        labels["llm_model"] = str(usage.get("model", ""))
        labels.update({f"llm_{name}": int(usage.get(name, 0)) for name in LLM_COUNTS})
        labels.update(llm_fallbacks=len(errors), llm_labeling_errors=dg.MetadataValue.json(errors))
    return labels


def _result_metadata(execution: Execution, scope: RunScope, outcomes: list[CheckOutcome]) -> dict[str, object]:
    result, rounded, lake = execution.result, _rounded_metrics(execution.result), scope.lake
    assignments = scope.results.assignments_key(result.namespace, result.cluster_id, result.run_id)
    enrichment = lake.enrichment_key(result.namespace, result.cluster_id)
    return {
        "summary": dg.MetadataValue.md(markdown_summary(result, scope.config, outcomes)),
        **{name: _picture(name, png) for name, png in execution.images.items()},
        "configuration": scope.config.display_name,
        "run_id": result.run_id,
        "status": result.status,
        "num_points": result.num_points,
        "num_clusters": result.num_clusters,
        "num_noise": result.num_noise,
        "noise_share": significant(result.num_noise / result.num_points) if result.num_points else 0.0,
        "silhouette_score": rounded.get("silhouette_score"),
        "davies_bouldin_index": rounded.get("davies_bouldin_index"),
        "calinski_harabasz_score": rounded.get("calinski_harabasz_score"),
        "ari_vs_previous": significant((result.drift or {}).get("adjusted_rand_index")),
        "quality": (result.metrics or {}).get("description", "-"),
        **_verdict(result),
        "clusters": _clusters_table(result),
        "timings": dg.MetadataValue.json({stage: significant(s) for stage, s in result.timings.items()}),
        "result_path": dg.MetadataValue.path(execution.uri),
        "assignments_path": dg.MetadataValue.path(lake.storage.uri(assignments)),
        "trigger": result.trigger or "manual",
        **({"trigger_reason": result.trigger_reason} if result.trigger_reason else {}),
        **(
            {"enrichment_path": dg.MetadataValue.path(lake.storage.uri(enrichment))}
            if execution.enrichment is not None
            else {}
        ),
        **{f"{name}_file": dg.MetadataValue.path(uri) for name, uri in result.artifacts.items()},
    }


def _clusters_table(result: ExecutionResult) -> dg.MetadataValue:
    """Cluster, label, size, share and keywords: narrow enough for the UI's metadata panel."""
    total = max(result.num_points, 1)
    records = [
        dg.TableRecord(
            {
                "cluster": c.cluster_id,
                "label": clip(c.label, LABEL_CHARS),
                "size": c.num_members,
                "share": f"{100 * c.num_members / total:.1f} %",
                "keywords": clip(", ".join(c.keywords), KEYWORDS_CHARS),
            }
        )
        for c in result.centroids or []
    ]
    columns = {"cluster": "string", "label": "string", "size": "int", "share": "string", "keywords": "string"}
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    return dg.MetadataValue.table(records=records, schema=schema)


def _check_results(
    result: ExecutionResult, checks: QualityChecks, outcomes: list[CheckOutcome]
) -> list[dg.AssetCheckResult]:
    """The evaluated checks (skipped ones report nothing: Dagster shows them skipped)."""
    severity = dg.AssetCheckSeverity.ERROR if checks.blocking else dg.AssetCheckSeverity.WARN
    return [
        dg.AssetCheckResult(
            asset_key=dg.AssetKey("execution_result"),
            check_name=outcome.name,
            passed=outcome.passed,
            severity=severity,
            description=outcome.description,
            metadata={"value": significant(outcome.value), "threshold": outcome.threshold, "run_id": result.run_id},
        )
        for outcome in outcomes
        if not outcome.skipped
    ]


CLUSTERING_ASSETS = [clustering_assets]
