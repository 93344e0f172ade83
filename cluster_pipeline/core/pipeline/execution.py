"""One clustering execution, the only chain there is: snapshot → load → fit → metrics → labels →
drift → topics → pictures → write.

Every way of running a configuration runs ``run_execution``: the Dagster multi-asset calls it in one
step (so the UI, sensors, schedules and ``cluster-pipeline execute`` do), ``execute`` for library
users and tests. One chain in one process means one matrix load, no intermediate pickling, and one
set of timings (``dagster`` — the run's start up to this chain — then every stage; only the final
commit of the small result file is not in it) and errors: any error becomes a ``failed``
ExecutionResult whose ``error_message`` is its user-facing text, then is re-raised.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.checkpoints import checkpoint
from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, StorageError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.attributes import attribute_groups
from cluster_pipeline.core.fit.clustering import FittedClustering, fit_clustering, refuse_oversized_sample
from cluster_pipeline.core.fit.streaming import StreamSource, fit_streaming, needs_streaming, why_unstreamable
from cluster_pipeline.core.incremental.enrichment import EnrichmentState, refresh_enrichment
from cluster_pipeline.core.incremental.model import model_from_fit
from cluster_pipeline.core.labels.base import ClusterLabel, Labeler, LabelingOutcome
from cluster_pipeline.core.pipeline.selection import (
    Selection,
    check_against_collection,
    feature_dimensions,
    load_matrix,
    select_documents,
)
from cluster_pipeline.core.progress import STAGE, Progress
from cluster_pipeline.core.quality.metrics import QualityMetrics, compute_metrics
from cluster_pipeline.core.quality.verdict import coverage, quality_note
from cluster_pipeline.core.store.annotations import Annotations, carried_over
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.store.history import latest_completed
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import (
    ASSIGNMENTS_SCHEMA,
    Centroid,
    ExecutionResult,
    ResultStore,
    assignment_columns,
    cluster_name,
    utc_now,
)
from cluster_pipeline.core.store.storage import read_parquet

if TYPE_CHECKING:  # scipy and pandas come with the stages that use them, not with every importer of the chain
    import pandas as pd

    from cluster_pipeline.core.quality.coherence import TopicQuality
    from cluster_pipeline.core.topics.structure import TopicStructure

ASSIGNMENT_BATCH_ROWS = 1 << 20


def assignment_batches(document_ids: pa.Array | pa.ChunkedArray, fitted: FittedClustering) -> pa.RecordBatchReader:
    """One row per document (``ASSIGNMENTS_SCHEMA``), built ``ASSIGNMENT_BATCH_ROWS`` at a time as the
    writer asks for them: ``is_noise`` as the algorithm found it (a reassigned noise document has a
    cluster and ``is_noise``); ``in_sample`` whether the algorithm was fitted on it (every document,
    unless ``sample_size``)."""
    labels, membership = fitted.labels, fitted.membership
    in_sample = np.ones(len(labels), dtype=bool)
    if fitted.sample_rows is not None:
        in_sample[:] = False
        in_sample[fitted.sample_rows] = True
    found_noise = labels < 0 if fitted.reassigned is None else (labels < 0) | fitted.reassigned

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(labels), ASSIGNMENT_BATCH_ROWS):
            rows = slice(start, start + ASSIGNMENT_BATCH_ROWS)
            ids = document_ids[rows]
            columns = assignment_columns(
                ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids,
                labels[rows],
                fitted.num_clusters,
                fitted.distances[rows],
                None if membership is None else membership[rows],
            )
            columns.update(is_noise=found_noise[rows], in_sample=in_sample[rows])
            yield pa.RecordBatch.from_pydict(columns, schema=ASSIGNMENTS_SCHEMA)

    return pa.RecordBatchReader.from_batches(ASSIGNMENTS_SCHEMA, batches())


def build_centroids(
    fitted: FittedClustering, outcome: LabelingOutcome, topics: TopicQuality | None = None
) -> list[Centroid]:
    """One per cluster; a cluster the labeler left out is named by its index. A cluster made by splitting
    an oversized one names it in its metadata (``split_from``, the found cluster of ``cluster_splits``)."""
    centroids = []
    coherence = dict(zip(range(fitted.num_clusters), topics.per_topic, strict=True)) if topics else {}
    parents = {
        child: parent for parent, children in (fitted.splits or {}).get("split", {}).items() for child in children
    }
    for index, size in enumerate(fitted.cluster_sizes[: fitted.num_clusters].tolist()):
        label = outcome.labels.get(index) or ClusterLabel(f"Cluster {index}", f"{size} documents.", [])
        metadata = dict(label.metadata)
        if fitted.groups is not None:
            metadata["attributes"] = fitted.groups[index]
        if cluster_name(index) in parents:
            metadata["split_from"] = parents[cluster_name(index)]
        centroids.append(
            Centroid(
                cluster_id=cluster_name(index),
                num_members=size,
                label=label.label,
                summary=label.summary,
                keywords=list(label.keywords),
                label_source=label.source,
                representative_document_ids=list(label.representative_document_ids),
                metadata=metadata,
                coherence=None if np.isnan(coherence.get(index, np.nan)) else coherence[index],
            )
        )
    return centroids


def base_result(
    config: ClusterConfig,
    run_id: str,
    created_at: datetime,
    *,
    dagster_run_id: str | None = None,
    trigger: str | None = None,
    trigger_reason: str | None = None,
) -> ExecutionResult:
    """The fields known before anything runs. ``trigger`` says what started the execution (``manual``,
    ``schedule``, ``collection_change``, ``novelty``, ``growth``), ``trigger_reason`` why, in words."""
    return ExecutionResult(
        run_id=run_id,
        cluster_id=config.cluster_id,
        status="processing",
        num_clusters=0,
        num_points=0,
        created_at=created_at,
        namespace=config.namespace,
        collection=config.collection,
        feature=config.feature_label,
        algorithm=config.algorithm,
        parameters=config.estimator_parameters(),
        dagster_run_id=dagster_run_id,
        trigger=trigger,
        trigger_reason=trigger_reason,
        configuration=config.model_dump(mode="json"),
        configuration_version=config.version,
        mode="full",
    )


def write_failed_result(
    results: ResultStore,
    base: ExecutionResult,
    message: str,
    *,
    canceled: bool = False,
    error_traceback: str | None = None,
) -> ExecutionResult | None:
    """The one writer of failed and canceled ExecutionResults (the run itself, a cancel, the lifecycle
    sensors and the reconciler all come here): ``base`` stored as ``failed`` (``canceled`` when a person
    stopped it) with ``message``, unless the execution has a result already — results are write-once,
    so the first outcome stays; None then."""
    failed = base.with_updates(
        status="canceled" if canceled else "failed",
        metrics=None,
        centroids=None,
        num_clusters=0,
        completed_at=utc_now(),
        error_message=message,
        error_traceback=error_traceback,
    )
    try:
        results.write(failed)
    except AlreadyExistsError:
        return None
    return failed


def completed_result(
    base: ExecutionResult,
    fitted: FittedClustering,
    metrics: QualityMetrics | None,
    outcome: LabelingOutcome,
    selection: Selection,
    topics: TopicQuality | None = None,
    texts_read: int | None = None,
) -> ExecutionResult:
    """``base`` filled in with what the execution found (timings, drift and artifacts come last);
    ``topics``: the coherence and diversity of its clusters' topic words, beside the metrics;
    ``texts_read``: the documents the labels and topics read (``shown_rows``), None for all."""
    num_points = len(fitted.labels)
    sample_size = metrics.silhouette_sample_size if metrics else None
    clustered = num_points - fitted.num_noise
    found_noise, reassigned = fitted.num_found_noise, fitted.num_reassigned
    return base.with_updates(
        selection=selection.record(fitted),
        status="completed",
        num_clusters=fitted.num_clusters,
        num_points=num_points,
        metrics=None if metrics is None else {**metrics.to_dict(), **(topics.to_metrics() if topics else {})},
        centroids=build_centroids(fitted, outcome, topics),
        completed_at=utc_now(),
        num_noise=fitted.num_found_noise,
        parameters=fitted.parameters,
        silhouette_sample_size=sample_size,
        llm_labeling_errors=outcome.errors,
        llm_usage=outcome.usage,
        engine=fitted.engine,
        reduction=fitted.reduction,
        auto_k=fitted.auto_k.to_dict() if fitted.auto_k else None,
        topic_reduction=fitted.topic_reduction,
        cluster_splits=fitted.splits,
        num_noise_reassigned=fitted.num_reassigned,
        vectors_retrieved=selection.matched,
        vectors_clustered=clustered,
        coverage=None
        if metrics is None
        else coverage(num_points, found_noise, reassigned, sample_size, clustered, texts_read),
        quality_note=quality_note(metrics.silhouette_score if metrics else None, fitted.reduction["method"]),
        warning=fitted.warning,
    )


def measure_topics(
    documents: pd.DataFrame, num_clusters: int, outcome: LabelingOutcome, text_fields: list[str] | None
) -> TopicQuality | None:
    """Coherence and diversity of each cluster's topic words (the labeler's, else its keywords' words) in
    the clustered documents' texts; None without clusters or text."""
    from cluster_pipeline.core.labels.offline import document_texts
    from cluster_pipeline.core.quality.coherence import topic_quality
    from cluster_pipeline.core.quality.texts import coherence_words

    texts = document_texts(documents, text_fields) if num_clusters else None
    if texts is None:
        return None
    words = outcome.topic_words or {
        c: [word for keyword in label.keywords for word in coherence_words(keyword)]
        for c, label in outcome.labels.items()
    }
    return topic_quality(texts, [words.get(c, []) for c in range(num_clusters)], cleaned=True)


def drift_against_previous(
    results: ResultStore,
    base: ExecutionResult,
    document_ids: pa.Array | pa.ChunkedArray,
    fitted: FittedClustering,
    space: np.ndarray,
) -> dict[str, Any] | None:
    """Compare with the latest completed execution of the same configuration, if there is one."""
    from cluster_pipeline.core.quality.drift import compare_runs

    previous = latest_completed(results, base.namespace, base.cluster_id)
    if previous is None or previous.run_id == base.run_id:
        return None
    assignments = results.read_assignments(previous.namespace, previous.cluster_id, previous.run_id)
    ids = document_ids.to_pandas()
    return compare_runs(previous.run_id, assignments, ids, fitted.labels, space, fitted.centroids, fitted.distances)


SHOWN_ROWS = 20_000  # documents the stages after the fit read, at most (50 per cluster if more)


def shown_rows(fitted: FittedClustering) -> np.ndarray | None:
    """The clustered documents the stages after the fit read (labels, topic names, pictures, the map):
    a seeded sample of ``max(SHOWN_ROWS, 50·(K+1))`` stratified by cluster (noise a stratum of its
    own), so what they cost is bounded whatever N; None (all of them) when there are no more. Every
    document is still assigned and measured: the sample bounds what is read of their text and drawn."""
    from cluster_pipeline.core.quality.metrics import MIN_POINTS_PER_CLUSTER, stratified_sample

    size = max(SHOWN_ROWS, MIN_POINTS_PER_CLUSTER * (fitted.num_clusters + 1))
    return None if len(fitted.labels) <= size else stratified_sample(fitted.labels, size)


def sampled_view(fitted: FittedClustering, rows: np.ndarray) -> FittedClustering:
    """``fitted`` as the documents ``rows`` see it: their labels, distances and membership, with the
    clusters' sizes still those of every document."""
    return replace(
        fitted,
        labels=fitted.labels[rows],
        distances=fitted.distances[rows],
        membership=None if fitted.membership is None else fitted.membership[rows],
        sizes=fitted.cluster_sizes,
    )


TRACEBACK_TAIL = 4000  # characters of a failure's traceback kept in its result (the innermost frames)
INTERRUPTED_MESSAGE = (
    "The execution was interrupted (Ctrl-C, SIGTERM or a stop request) before it completed; "
    "execute the configuration again."
)


def unexpected_error_message(error: BaseException) -> str:
    """Text for an error we did not anticipate: the cause, then what to try."""
    if isinstance(error, ClusterPipelineError):
        return str(error)
    if not isinstance(error, Exception):  # KeyboardInterrupt, Dagster's interrupt on SIGTERM, SystemExit
        return INTERRUPTED_MESSAGE
    if isinstance(error, MemoryError):
        return "Out of memory: the collection is too large for this algorithm; use minibatch_kmeans or PCA."
    return f"Clustering algorithm failed: {type(error).__name__}: {error}"


@dataclass
class FailureBase:
    """What a failed result would say, updated as the block learns the snapshot and the selection."""

    result: ExecutionResult


@contextmanager
def recording_failure(results: ResultStore, base: ExecutionResult) -> Iterator[FailureBase]:
    """Turn an error inside the block into a stored ``failed`` ExecutionResult, then re-raise it.
    Interrupts too (Ctrl-C, SIGTERM, Dagster's termination): whatever ends the block early leaves a
    failed result saying why, unless one was written already (a cancel writes its own first)."""
    current = FailureBase(base)
    try:
        yield current
    except (AlreadyExistsError, GeneratorExit):
        raise
    except BaseException as error:
        trace = "".join(traceback.format_exception(error))[-TRACEBACK_TAIL:] if isinstance(error, Exception) else None
        # a lake that cannot take the result (its disk full) may refuse the failed one too: the error
        # raised is then the execution's own, and the failed result is written from outside later
        with suppress(StorageError):
            write_failed_result(results, current.result, unexpected_error_message(error), error_traceback=trace)
        raise


class StageTimer:
    """Seconds per stage, in the order the stages ran, each stage's start and end reported to
    ``progress``; entering a stage passes its checkpoint (``core.checkpoints``), where a
    fault-injection test may hold the execution."""

    def __init__(self, timings: Mapping[str, float] | None, cluster_id: str, progress: Progress) -> None:
        self.timings: dict[str, float] = dict(timings or {})
        self.cluster_id = cluster_id
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        checkpoint(self.cluster_id, name)
        self.progress.update(name, 0, 1, unit=STAGE)
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 4)
        self.progress.update(name, 1, 1, unit=STAGE)


@dataclass
class Execution:
    """What one completed execution produced: the stored result (and where), and what the Dagster
    layer shows beside it (the snapshot, the fit, the metrics, the labels, the pictures)."""

    result: ExecutionResult
    uri: str
    images: dict[str, bytes]
    snapshot: CollectionSnapshot
    fitted: FittedClustering
    metrics: QualityMetrics | None
    labeling: LabelingOutcome
    dimensions: int
    streamed: bool
    enrichment: EnrichmentState | None = None
    enrichment_error: str | None = None


@dataclass(frozen=True)
class Findings:
    """What the chain found, ready to publish. ``space`` is the whole prepared matrix, or for a
    streamed execution only the rows ``sample_rows`` (the pictures then draw that sample);
    ``documents`` are the rows of ``space``, ``document_ids`` every clustered document's id."""

    result: ExecutionResult
    fitted: FittedClustering
    space: np.ndarray
    documents: pd.DataFrame
    document_ids: pa.Array | pa.ChunkedArray
    topics: TopicStructure
    drift: dict[str, Any] | None = None
    sample_rows: np.ndarray | None = None


def run_execution(
    lake: Lake,
    config: ClusterConfig,
    run_id: str,
    *,
    labeler: Labeler | None = None,
    created_at: datetime | None = None,
    dagster_run_id: str | None = None,
    progress: Progress | None = None,
    timings: Mapping[str, float] | None = None,
    on_snapshot: Callable[[CollectionSnapshot], None] | None = None,
    trigger: str | None = None,
    trigger_reason: str | None = None,
) -> Execution:
    """Run one execution in this process and write its ExecutionResult (completed or failed; the
    error is re-raised). ``timings`` are stages measured before the chain (Dagster's start-up);
    ``on_snapshot`` hears which collection version is clustered as soon as it is known. Vectors over
    ``config.memory_budget_mb`` (without one: over the machine's available memory) are streamed
    (``core.fit.streaming``). A failure to refresh the enrichment afterwards is reported in
    ``Execution.enrichment_error``: it never undoes the result."""
    base = base_result(
        config,
        run_id,
        created_at or utc_now(),
        dagster_run_id=dagster_run_id,
        trigger=trigger,
        trigger_reason=trigger_reason,
    )
    from cluster_pipeline.core.labels.offline import OfflineLabeler

    progress = progress or Progress.silent()
    timer = StageTimer(timings, config.cluster_id, progress)
    execution = _run(lake, config, base, labeler or OfflineLabeler(), progress, timer, on_snapshot)
    try:
        return replace(execution, enrichment=refresh_enrichment(lake, config, execution.snapshot))
    except (ClusterPipelineError, OSError, pa.ArrowException) as error:
        return replace(execution, enrichment_error=unexpected_error_message(error))
    finally:
        # Arrow's allocator keeps what the execution freed for later (~170 MB after 1M documents): a code
        # server or daemon that runs executions one after another gives it back instead
        pa.default_memory_pool().release_unused()


def _run(
    lake: Lake,
    config: ClusterConfig,
    base: ExecutionResult,
    labeler: Labeler,
    progress: Progress,
    timer: StageTimer,
    on_snapshot: Callable[[CollectionSnapshot], None] | None,
) -> Execution:
    from cluster_pipeline.core.topics.structure import topic_structure

    collections, results = CollectionStore(lake), ResultStore(lake)
    with recording_failure(results, base) as failing:
        snapshot = collections.snapshot(config.namespace, config.collection)
        failing.result = base = base.with_updates(
            num_points=snapshot.num_documents, collection_version=snapshot.version,
            source_documents=snapshot.num_documents,
        )  # fmt: skip
        if on_snapshot is not None:
            on_snapshot(snapshot)
        check_against_collection(collections, snapshot, config)
        selection = select_documents(collections, snapshot, config)
        failing.result = base = base.with_updates(num_points=selection.matched, selection=selection.record())
        dimensions = feature_dimensions(snapshot, config)
        source = StreamSource(collections, snapshot, tuple(config.feature_names), config.filters is not None)
        streamable = why_unstreamable(source, config.clustering) is None
        streamed = needs_streaming(config.clustering, selection.matched, dimensions, streamable=streamable)
        if not streamed:
            fitted, space, metrics = _fit_in_memory(collections, snapshot, config, selection, progress, timer)
            shown = shown_rows(fitted)
            shown_space = space if shown is None else space[shown]
        else:  # over the memory budget: metrics and labels from a sample, no drift (it needs every vector)
            with timer.stage("fit"):
                stream = fit_streaming(source, config.clustering, config.metrics, progress)
            fitted, space, metrics, shown = stream.fitted, stream.sample_space, stream.metrics, stream.sample_rows
            shown_space = space
        view = fitted if shown is None else sampled_view(fitted, shown)  # what labelers, topics and pictures see
        documents_at = shown if selection.rows is None or shown is None else selection.rows[shown]
        with timer.stage("labels"):
            documents = collections.load_documents(snapshot, rows=selection.rows if shown is None else documents_at)
            outcome = labeler.label(documents, view, shown_space, config.labeling)
        with timer.stage("coherence"):
            topics_measured = measure_topics(documents, fitted.num_clusters, outcome, config.labeling.text_fields)
        ids = (
            pa.array(documents["document_id"], pa.string())
            if shown is None
            else collections.scan(snapshot).table(["document_id"], rows=selection.rows).column(0)
        )
        drift = None
        if not streamed:
            with timer.stage("drift"):
                drift = drift_against_previous(results, base, ids, fitted, space)
        del space
        texts_read = None if shown is None else len(shown)
        completed = completed_result(base, fitted, metrics, outcome, selection, topics_measured, texts_read)
        with timer.stage("topics"):
            names = [c.label for c in completed.centroids or []]
            schema = collections.scan(snapshot).metadata_schema
            times = None
            if shown is not None:  # every clustered document's time, not only the sample's
                times = lambda column: collections.load_documents(snapshot, [column], selection.rows)[column]  # noqa: E731
            counted = outcome.word_counts if config.topics.text_fields == config.labeling.text_fields else None
            topics = topic_structure(
                fitted, names, documents, view.labels, config.topics, schema=schema, times=times, word_counts=counted
            )
        findings = Findings(completed, fitted, shown_space, documents, ids, topics, drift, shown)
        result, uri, images = _publish(results, findings, config, timer)
    return Execution(result, uri, images, snapshot, fitted, metrics, outcome, dimensions, streamed)


def _fit_in_memory(
    collections: CollectionStore,
    snapshot: CollectionSnapshot,
    config: ClusterConfig,
    selection: Selection,
    progress: Progress,
    timer: StageTimer,
) -> tuple[FittedClustering, np.ndarray, QualityMetrics | None]:
    """The selected documents' vectors loaded, fitted and measured: the clustering, the space it was
    fitted in, its metrics."""
    refuse_oversized_sample(config.sample_size, selection.matched, filtered=bool(config.filters))
    spec = registry.spec(config.algorithm)
    columns, groups = spec.grouping_columns(config.parameters), None
    with timer.stage("load"):
        X = load_matrix(collections, snapshot, config, selection, progress)
        if columns is not None:  # attribute_based: the selected documents' attribute groups
            table = collections.scan(snapshot).table(columns, rows=selection.rows)
            groups = attribute_groups(table, columns, int(spec.with_defaults(config.parameters)["max_groups"]))
    with timer.stage("fit"):
        fitted, space = fit_clustering(X, config.clustering, copy=False, progress=progress, groups=groups)
        del X
    with timer.stage("metrics"):
        by_means = config.centroid_method == "mean"  # Davies–Bouldin and Calinski–Harabasz are defined by means
        metrics = compute_metrics(
            space,
            fitted.labels,
            metric=fitted.metric,
            options=config.metrics,
            centroids=fitted.centroids if by_means else None,
            distances=fitted.distances if by_means else None,
        )
    return fitted, space, metrics


def execute(lake: Lake, config: ClusterConfig, run_id: str, **options: Any) -> ExecutionResult:
    """``run_execution(...).result``: the stored ExecutionResult (for library users and tests)."""
    return run_execution(lake, config, run_id, **options).result


def previous_map(results: ResultStore, result: ExecutionResult) -> tuple[pa.Table | None, str | None]:
    """The map points (``document_id``, ``x``, ``y``) of the configuration's latest completed execution
    before ``result``, and its run_id; None where there is none (or it has no map)."""
    previous = latest_completed(results, result.namespace, result.cluster_id)
    if previous is None or previous.run_id == result.run_id:
        return None, None
    key = results.lake.execution_key(previous.namespace, previous.cluster_id, previous.run_id, "map.parquet")
    if not results.storage.exists(key):
        return None, previous.run_id
    return read_parquet(results.storage, key, columns=["document_id", "x", "y"]), previous.run_id


def _pictures(
    findings: Findings, config: ClusterConfig, results: ResultStore, progress: Progress
) -> tuple[dict[str, bytes], pa.Table | None, dict[str, Any] | None]:
    """The PNGs of the execution, the map's points (None without clusters) and the layout's record:
    both drawn in the clustering's own space, aligned to the previous execution's map."""
    from cluster_pipeline.core.render.cluster_map import map_table
    from cluster_pipeline.core.render.layout import align_to_previous, lay_out
    from cluster_pipeline.core.render.plots import MAX_PLOT_POINTS, auto_k_png, projection_png, sizes_png
    from cluster_pipeline.core.render.topic_plots import topic_pictures

    fitted, rows = findings.fitted, findings.sample_rows
    names = [c.label for c in findings.result.centroids or []]
    sizes = list(fitted.cluster_sizes)
    images, points, layout = {}, None, None
    # The charts that need no layout are drawn on other threads meanwhile: Pillow's quantizing and PNG
    # encoding and numpy's blending let go of the GIL, so the pictures take the longest one's time, not the sum.
    with ThreadPoolExecutor(2) as pool:
        sizes_chart = pool.submit(sizes_png, sizes, names, fitted.num_noise)
        topic_charts = pool.submit(topic_pictures, findings.result, findings.topics)
        if fitted.num_clusters:
            labels = fitted.labels if rows is None else fitted.labels[rows]
            graph = fitted.graph if rows is None else None  # UMAP's graph holds every row; a sample is laid out anew
            projection = lay_out(findings.space, labels, graph=graph, method=config.plot_projection, progress=progress)
            ids = findings.documents["document_id"].iloc[projection.rows].astype(str).to_numpy()
            projection, layout = align_to_previous(projection, ids, *previous_map(results, findings.result))
            images["projection"] = projection_png(projection.sample(MAX_PLOT_POINTS), names, sizes, fitted.num_noise)
            points = map_table(projection, findings.documents, config.labeling.text_fields)
        images["sizes"] = sizes_chart.result()
        if fitted.auto_k is not None:
            images["auto_k"] = auto_k_png(fitted.auto_k)
        images.update(topic_charts.result())
    return images, points, layout


def _write_beside(results: ResultStore, result: ExecutionResult, suffix: str, content: bytes | pa.Table) -> str:
    """Write ``<run_id>.<suffix>`` unless an earlier attempt of the run did; its URI."""
    key = results.lake.execution_key(result.namespace, result.cluster_id, result.run_id, suffix)
    if not results.storage.exists(key):
        if isinstance(content, pa.Table):
            results.storage.write_parquet_new(key, content)
        else:
            results.storage.write_new(key, content)
    return results.storage.uri(key)


def _publish(
    results: ResultStore, findings: Findings, config: ClusterConfig, timer: StageTimer
) -> tuple[ExecutionResult, str, dict[str, bytes]]:
    """Pictures, then the files beside the result, then the ExecutionResult itself: the commit point."""
    with timer.stage("pictures"):
        images, points, layout = _pictures(findings, config, results, timer.progress)
    result, topics = findings.result, findings.topics
    with timer.stage("write"):
        files: dict[str, bytes | pa.Table] = {f"{name}.png": png for name, png in images.items()}
        if points is not None:
            files["map.parquet"] = points
        artifacts = {suffix.split(".")[0]: _write_beside(results, result, suffix, f) for suffix, f in files.items()}
        results.write_assignments(result, assignment_batches(findings.document_ids, findings.fitted))
        _write_beside(results, result, "model.npz", model_from_fit(result.run_id, findings.fitted).to_bytes())
        over_time = None
        if topics.over_time is not None:  # a table, not a picture: beside the result, not in artifacts
            table_uri = _write_beside(results, result, "over_time.parquet", topics.over_time.table)
            over_time = {**topics.over_time.summary, "table": table_uri}
    result = result.with_updates(
        drift=findings.drift,
        artifacts=artifacts,
        timings=dict(timer.timings),
        hierarchy=topics.hierarchy,
        topics_over_time=over_time,
        layout=layout,
    )
    uri = results.write(result)
    return result.annotated(_carry_names_over(results, result)), uri, images


def _carry_names_over(results: ResultStore, result: ExecutionResult) -> Annotations:
    """The names people gave the previous execution's clusters, given to the clusters the drift matching
    paired with them (stored as this run's annotations, marked as carried over)."""
    drift = result.drift or {}
    if not drift.get("stable_clusters"):
        return Annotations()
    previous = results.annotations.get(result.namespace, result.cluster_id, drift["previous_run_id"])
    carried = carried_over(drift["previous_run_id"], previous, drift["stable_clusters"])
    if not carried.empty:
        results.annotations.put(result.namespace, result.cluster_id, result.run_id, carried)
    return carried
