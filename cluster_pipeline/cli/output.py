"""How the CLI shows ExecutionResults and listings: a readable summary, tables with headers, and a
failed execution's error in one line with where its full logs are. Everything fits the terminal's
width (80 columns when the output is not a terminal): tables cut long cells with an ellipsis, prose
wraps; ids and paths are never cut."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import click

from cluster_pipeline.cli.app import EXIT_FAILED_EXECUTION, EXIT_INTERRUPTED, current_settings, print_error
from cluster_pipeline.core.quality.verdict import percent
from cluster_pipeline.core.store.results import ExecutionResult, format_timestamp

PIPED_WIDTH = 80
TABLE_GAP = 2  # spaces between a table's columns
MIN_CELL = 5  # a cut cell keeps at least this many characters (the ellipsis included)


def output_width() -> int:
    """The terminal's width when stdout is one, else 80."""
    return shutil.get_terminal_size((PIPED_WIDTH, 24)).columns if sys.stdout.isatty() else PIPED_WIDTH


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    keep: Sequence[str] = (),
    right: Sequence[str] = (),
    width: int | None = None,
) -> str:
    """``rows`` under ``headers``, drawn by rich within ``width`` (default: the output's): the widest
    cells give way first, ending with an ellipsis, down to their header's width, then the headers
    too, except the columns named in ``keep`` (ids people copy); the columns in ``right``
    right-aligned."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    room = (width or output_width()) - TABLE_GAP * (len(headers) - 1)
    shrinkable = [i for i, header in enumerate(headers) if header not in keep]
    for floors in ([max(len(header), MIN_CELL) for header in headers], [MIN_CELL] * len(headers)):
        while sum(widths) > room:
            over = [i for i in shrinkable if widths[i] > floors[i]]
            if not over:
                break
            widths[max(over, key=lambda i: widths[i])] -= 1
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, header_style="bold")
    for header, column_width in zip(headers, widths, strict=True):
        justify = "right" if header in right else "left"
        grid.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis", width=column_width)
    for row in cells:
        grid.add_row(*row)
    out = io.StringIO()
    # room to spare: the columns' fixed widths alone decide the table's
    Console(file=out, width=2 * sum(widths) + 8 * len(headers), color_system=None, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())


def wrapped(name: str, text: str, indent: str = "  ") -> str:
    """``  name: text`` wrapped to the output's width, continuation lines indented further."""
    return textwrap.fill(f"{name}: {text}", output_width(), initial_indent=indent, subsequent_indent=indent + "  ")


def shown_path(uri: str) -> str:
    """A result's location, relative to the current folder when it is inside it (shorter to read)."""
    if "://" in uri:
        return uri
    relative = os.path.relpath(uri)
    return uri if relative.startswith("..") else relative


def configuration_name(result: ExecutionResult) -> str:
    """The name the execution's configuration had (its ``clust_…`` id for configurations without one)."""
    return str((result.configuration or {}).get("name") or result.cluster_id)


def describe_result(result: ExecutionResult, path: str | None = None) -> str:
    """A readable summary of one ExecutionResult: which configuration, what it found, its clusters,
    and where its result, pictures and report are."""
    version = f" v{result.configuration_version}" if result.configuration_version else ""
    lines = [
        f"{result.run_id}  {result.status}  {configuration_name(result)}{version}",
        f"  configuration {result.cluster_id}: {result.algorithm} on {result.namespace}/{result.collection}",
        f"  created {format_timestamp(result.created_at)}  completed {format_timestamp(result.completed_at) or '-'}",
    ]
    if result.run_name:
        lines.append(wrapped("run name", result.run_name))
    if result.status in ("failed", "canceled"):
        lines.append(wrapped("error", result.error_message or ""))
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
    from cluster_pipeline.core.render.report import describe_selection, topics_line

    if chosen := describe_selection(result.selection):
        lines.append(wrapped("selection", chosen))
    if result.metrics:
        m = result.metrics
        lines.append(
            f"  silhouette {m['silhouette_score']:.3f}  davies-bouldin {m['davies_bouldin_index']:.3f}  "
            f"calinski-harabasz {m['calinski_harabasz_score']:.1f}"
        )
        lines.append(wrapped("quality", str(m["description"])))
        if topics := topics_line(m):
            lines.append(wrapped("topic words", topics))
    verdict = (("metrics", result.coverage), ("note", result.quality_note), ("warning", result.warning))
    lines += [wrapped(name, value) for name, value in verdict if value]
    if result.trigger and result.trigger != "manual":
        lines.append(
            wrapped("trigger", result.trigger + (f" ({result.trigger_reason})" if result.trigger_reason else ""))
        )
    if result.centroids:
        rows = []
        for centroid in result.centroids:
            renamed = {"override": " (renamed)", "carried_over": " (name carried over)"}.get(centroid.label_source, "")
            group = centroid.metadata.get("attributes")
            described = ", ".join(f"{name}={value}" for name, value in group.items()) if group else ""
            rows.append(
                (
                    centroid.cluster_id,
                    centroid.num_members,
                    centroid.label + renamed,
                    described or ", ".join(centroid.keywords),
                )
            )
        last = "group" if any("attributes" in c.metadata for c in result.centroids) else "keywords"
        headers = ("cluster", "size", "label", last)
        grid = table(headers, rows, keep=("cluster",), right=("size",), width=output_width() - 2)
        lines += ["  " + line for line in grid.splitlines()]
    pictures = [name for name in result.artifacts if name != "map"]
    if path:  # the folder alone on its line: a path is never cut
        folder, name = shown_path(path).rpartition("/")[::2]
        lines += [f"  files in {folder}/", f"    {name}: the ExecutionResult"]
        if pictures:
            lines.append(wrapped(f"{result.run_id}.NAME.png", f"pictures {', '.join(pictures)}", indent="    "))
    if pictures:
        lines.append(f"  report: cluster-pipeline executions report {result.run_id}")
    return "\n".join(lines)


def executions_table(results: Sequence[ExecutionResult]) -> str:
    """One row per execution: run id, status, when, documents, clusters, silhouette, noise (80
    columns with 5-digit document counts)."""
    rows = []
    for r in results:
        created = format_timestamp(r.created_at) or "-"
        in_flight = r.status in ("pending", "processing")
        rows.append(
            (
                r.run_id,
                r.status,
                f"{created[:10]} {created[11:16]}",
                "-" if in_flight and not r.num_points else r.num_points,
                r.num_clusters,
                "-" if not r.metrics else format(r.metrics["silhouette_score"], ".3f"),
                percent(r.num_noise / r.num_points) if r.num_points and r.status == "completed" else "-",
            )
        )
    headers = ("run_id", "status", "created (UTC)", "docs", "clusters", "silh.", "noise")
    return table(headers, rows, keep=("run_id", "created (UTC)"), right=("docs", "clusters", "silh.", "noise"))


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
