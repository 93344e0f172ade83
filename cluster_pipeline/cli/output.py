"""How the CLI shows ExecutionResults: a readable summary, one line per execution in listings,
and a failed execution's error in one line with where its full logs are."""

from typing import Any

import click

from cluster_pipeline.cli.app import EXIT_FAILED_EXECUTION, EXIT_INTERRUPTED, current_settings, print_error
from cluster_pipeline.core.quality.verdict import percent
from cluster_pipeline.core.store.results import ExecutionResult, format_timestamp


def describe_result(result: ExecutionResult, path: str | None = None) -> str:
    """A readable summary of one ExecutionResult."""
    version = f" v{result.configuration_version}" if result.configuration_version else ""
    lines = [
        f"{result.run_id}  {result.status}  configuration {result.cluster_id}{version} ({result.algorithm} on "
        f"{result.namespace}/{result.collection})",
        f"  created {format_timestamp(result.created_at)}  completed {format_timestamp(result.completed_at) or '-'}",
    ]
    if result.run_name:
        lines.append(f"  run name: {result.run_name}")
    if result.status in ("failed", "canceled"):
        lines.append(f"  error: {result.error_message}")
        return "\n".join(lines)
    if result.status in ("pending", "processing"):
        documents = (
            f"{result.num_points} documents (collection {result.collection_version})"
            if result.num_points
            else "snapshot not taken yet"
        )
        lines.append(f"  {'waiting to start' if result.status == 'pending' else 'running'}: {documents}")
        return "\n".join(lines)
    noise = (
        f"{result.num_noise} noise ({percent(result.num_noise / result.num_points)})"
        if result.num_points
        else "0 noise"
    )
    lines.append(f"  {result.num_points} documents, {result.num_clusters} clusters, {noise}")
    from cluster_pipeline.core.render.report import describe_selection

    if chosen := describe_selection(result.selection):
        lines.append(f"  {chosen}")
    if result.metrics:
        m = result.metrics
        lines.append(
            f"  silhouette {m['silhouette_score']:.3f}  davies-bouldin {m['davies_bouldin_index']:.3f}  "
            f"calinski-harabasz {m['calinski_harabasz_score']:.1f}  ({m['description']})"
        )
    verdict = (("metrics", result.coverage), ("note", result.quality_note), ("warning", result.warning))
    lines += [f"  {name}: {value}" for name, value in verdict if value]
    if result.trigger and result.trigger != "manual":
        lines.append(f"  trigger: {result.trigger}" + (f" ({result.trigger_reason})" if result.trigger_reason else ""))
    for centroid in result.centroids or []:
        renamed = {"override": "  (renamed)", "carried_over": "  (name carried over)"}.get(centroid.label_source, "")
        lines.append(f"  {centroid.cluster_id:>6} {centroid.num_members:>7}  {centroid.label}{renamed}")
        if "attributes" in centroid.metadata:
            group = ", ".join(f"{name}={value}" for name, value in centroid.metadata["attributes"].items())
            lines.append(f"  {'':>6} {'':>7}  group: {group}")
        lines.append(f"  {'':>6} {'':>7}  keywords: {', '.join(centroid.keywords)}")
    if path:
        lines.append(f"  result: {path}")
    return "\n".join(lines)


def summary_line(r: ExecutionResult) -> str:
    silhouette = "-" if not r.metrics else format(r.metrics["silhouette_score"], ".3f")
    documents = f"{r.num_points if r.num_points or r.status not in ('pending', 'processing') else '-':>8} docs"
    noise = f"  noise {percent(r.num_noise / r.num_points)}" if r.num_points and r.status == "completed" else ""
    return (
        f"{r.run_id}  {r.status:<10} {format_timestamp(r.created_at)}  {documents}  "
        f"{r.num_clusters:>4} clusters  silhouette {silhouette}{noise}"
    )


def stats_line(total: int, stats: dict[str, Any]) -> str:
    """``12 in total: 9 completed, 2 failed, 1 pending; mean silhouette 0.412 (over 9)``."""
    counts = ", ".join(f"{count} {status}" for status, count in stats["by_status"].items())
    line = f"{total} in total" + (f": {counts}" if counts else "")
    if stats["mean_silhouette"] is not None:
        line += f"; mean silhouette {stats['mean_silhouette']:.3f} (over {stats['with_metrics']})"
    return line


def report_execution(result: ExecutionResult, path: str | None) -> int:
    """Print an execution's result; a failed one also gets its one-line error and where its logs are."""
    from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE

    settings = current_settings()
    settings.emit(result.to_json_dict(), describe_result(result, path))
    if result.status == "completed":
        return 0
    ids = {"run_id": result.run_id, "dagster_run_id": result.dagster_run_id}
    print_error("ExecutionFailed", result.error_message, settings.json, **ids)
    if not settings.json:
        click.echo(f"  full logs: Dagster run {result.dagster_run_id} (`dagster dev`, Runs)", err=True)
    return EXIT_INTERRUPTED if result.error_message == INTERRUPTED_MESSAGE else EXIT_FAILED_EXECUTION
