"""Commands on executions: ``execute`` (now, or queued with ``--no-wait``), the ``executions`` group
(list, latest, show, wait, cancel, report, hierarchy) and ``demo``."""

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cluster_pipeline.cli.app import (
    EXIT_TIMEOUT,
    cli,
    current_service,
    current_settings,
    print_error,
    read_json_option,
    timestamp_option,
)
from cluster_pipeline.cli.output import describe_result, executions_table, report_execution, stats_line
from cluster_pipeline.cli.progress import showing_progress
from cluster_pipeline.core.errors import AlreadyExistsError
from cluster_pipeline.core.store.history import FILTER_FIELDS, SORT_FIELDS
from cluster_pipeline.core.store.results import STATUSES


def _on_terminal() -> bool:
    """Progress is drawn only for a person: on a terminal, not under --json."""
    return sys.stderr.isatty() and not current_settings().json


@cli.command()
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--no-wait", is_flag=True,
              help="Queue it in Dagster and return at once (run_id, status pending); the daemon runs it.")  # fmt: skip
def execute(configuration_name: str, no_wait: bool) -> int:
    """Execute a configuration (its name or clust_ id) through Dagster and print its ExecutionResult (or,
    with --no-wait, queue it)."""
    executions = current_service().executions
    if no_wait:
        pending = executions.submit(configuration_name)
        current_settings().emit(
            pending.to_json_dict(),
            f"{pending.run_id}  pending  (Dagster run {pending.dagster_run_id})\n"
            f"  follow it: cluster-pipeline executions wait {pending.run_id}",
        )
        return 0
    with showing_progress(_on_terminal()):
        result = executions.execute(configuration_name)
    return report_execution(result, executions.location(result))


@cli.group()
def executions() -> None:
    """Execution history: list, latest, show, wait, labels, name, cancel, report, hierarchy."""


@executions.command("list")
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Keep these (repeatable).")
@click.option("--since", "created_after", callback=timestamp_option, help="Created at or after (ISO 8601).")
@click.option("--until", "created_before", callback=timestamp_option, help="Created before (ISO 8601).")
@click.option("--min-clusters", type=int, help="At least this many clusters.")
@click.option("--max-clusters", type=int, help="At most this many clusters.")
@click.option("--min-silhouette", type=float, help="Silhouette at least this.")
@click.option("--max-silhouette", type=float, help="Silhouette at most this.")
@click.option("--sort", "sort_by", default="created_at", show_default=True, type=click.Choice(SORT_FIELDS),
              metavar="FIELD", help=f"Order by this field, newest / highest first: {', '.join(SORT_FIELDS)}.")  # fmt: skip
@click.option("--ascending", "descending", flag_value=False, default=True, help="Oldest / lowest first.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Executions per page.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0), help="Skip this many first.")
@click.option("--cursor", help="next_cursor of the previous page.")
@click.option("--filter", "filter_", metavar="JSON|@FILE",
              help=f"AND/OR/NOT over {', '.join(FILTER_FIELDS)}.")  # fmt: skip
@click.option("--search", help="Text in the clusters' labels or keywords, or in the error message (any case).")
@click.option("--include-total", is_flag=True, help="Also count all matches: total, by status, mean silhouette.")
def executions_list(configuration_name: str, filter_: str | None, include_total: bool, **query: Any) -> None:
    """Executions of one configuration (its name or clust_ id), pending and processing ones included."""
    from cluster_pipeline.service import HistoryQuery

    page = current_service().executions.list(
        configuration_name,
        HistoryQuery(**{**query, "statuses": query["statuses"] or None}),
        filter=None if filter_ is None else read_json_option(filter_, "--filter"),
        include_total=include_total,
    )
    data: dict[str, Any] = {"results": [r.to_json_dict() for r in page.results], "next_cursor": page.next_cursor}
    lines = [executions_table(page.results) if page.results else f"No executions of {page.configuration} match."]
    if include_total and page.stats is not None:
        data["total"], data["stats"] = page.total, page.stats
        lines.append(stats_line(page.total or 0, page.stats))
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    current_settings().emit(data, "\n".join(lines))


@executions.command("latest")
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these (repeatable).")
def executions_latest(configuration_name: str, statuses: tuple[str, ...]) -> None:
    """The newest execution of a configuration (its name or clust_ id)."""
    result = current_service().executions.latest(configuration_name, statuses)
    current_settings().emit(result.to_json_dict(), describe_result(result))


@executions.command("show")
@click.argument("run_id")
def executions_show(run_id: str) -> None:
    """One ExecutionResult (pending and processing ones too)."""
    executions = current_service().executions
    result = executions.get(run_id)
    current_settings().emit(result.to_json_dict(), describe_result(result, executions.location(result)))


@executions.command("wait")
@click.argument("run_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after this many seconds (exit status 124).")
def executions_wait(run_id: str, timeout: float | None) -> int:
    """Wait until an execution is completed or failed, then print it (exit status as `execute`)."""
    settings, executions = current_settings(), current_service().executions
    result = executions.wait(run_id, timeout)
    if result.status not in ("pending", "processing"):
        return report_execution(result, executions.location(result))
    settings.emit(result.to_json_dict(), describe_result(result))
    message = (
        f"Execution {run_id} is still {result.status} after {timeout:g} s; wait again, or stop it with "
        f"`cluster-pipeline executions cancel {run_id}`."
    )
    print_error("Timeout", message, settings.json)
    return EXIT_TIMEOUT


@executions.command("labels")
@click.argument("run_id")
@click.argument("labels", nargs=-1, required=True, metavar="CLUSTER=LABEL...")
def executions_labels(run_id: str, labels: tuple[str, ...]) -> None:
    """Rename clusters of a completed execution (cl_0="Sports"; cl_0= removes the name); the next
    execution's matching clusters keep the names."""
    pairs = dict(item.partition("=")[::2] for item in labels)
    result = current_service().executions.rename_clusters(run_id, {k: v or None for k, v in pairs.items()})
    current_settings().emit(result.to_json_dict(), describe_result(result))


@executions.command("name")
@click.argument("run_id")
@click.argument("run_name")
def executions_name(run_id: str, run_name: str) -> None:
    """Name a finished execution ("" removes the name)."""
    result = current_service().executions.name_run(run_id, run_name)
    current_settings().emit(result.to_json_dict(), describe_result(result))


@executions.command("cancel")
@click.argument("run_id")
def executions_cancel(run_id: str) -> None:
    """Stop a pending or processing execution; it ends canceled."""
    result = current_service().executions.cancel(run_id)
    current_settings().emit(result.to_json_dict(), describe_result(result))


@executions.command("report")
@click.argument("run_id")
@click.option("--output", type=click.Path(), help="HTML file or existing folder (default: RUN_ID.html here).")
@click.option("--dagster-url", metavar="URL",
              help="The Dagster UI the report links the run to (default: $CLUSTER_PIPELINE_DAGSTER_URL or "
                   "http://localhost:3000).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def executions_report(run_id: str, output: str | None, dagster_url: str | None, force: bool) -> None:
    """Write a self-contained HTML report of one execution (pictures, checks, interactive map, drift)."""
    target = Path(output or ".").expanduser()
    if output is None or target.is_dir():
        target = target / f"{run_id}.html"
    refusal = AlreadyExistsError(f"{target} exists already; pass --force to replace it, or choose another --output.")
    if target.exists() and not force:
        raise refusal
    page = current_service().executions.report(run_id, dagster_url)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        if force:
            temporary.replace(target)
        else:
            try:
                os.link(temporary, target)  # refuses a file made meanwhile
            except FileExistsError:
                raise refusal from None
    finally:
        temporary.unlink(missing_ok=True)
    current_settings().emit({"report": str(target.resolve())}, f"Wrote {target.resolve()}")


@executions.command("hierarchy")
@click.argument("run_id")
@click.option("--groups", type=click.IntRange(min=1), help="Cut the tree into this many topics, with merged labels.")
def executions_hierarchy(run_id: str, groups: int | None) -> None:
    """The topic tree of one execution (merges closest first), or its cut into --groups topics."""
    executions, settings = current_service().executions, current_settings()
    if groups is not None:
        topics = executions.topics(run_id, groups)
        lines = [f"{t.id:>6} {t.num_members:>7}  {t.label}  ({', '.join(t.clusters)})" for t in topics]
        settings.emit({"run_id": run_id, "groups": [asdict(t) for t in topics]}, "\n".join(lines))
        return
    hierarchy = executions.hierarchy(run_id)
    lines = [
        f"{n['id']:>6} {n['distance']:.3f} {n['num_members']:>7}  {n['label']}  = {' + '.join(n['children'])}"
        for n in hierarchy["nodes"]
    ]
    settings.emit(hierarchy, "\n".join(lines))


@cli.command()
@click.option("--documents", default=3000, show_default=True, type=click.IntRange(min=60),
              help="Documents to generate (at least 60: ten per topic).")  # fmt: skip
@click.option(
    "--embed",
    is_flag=True,
    help="Embed the documents' title and text with $CLUSTER_PIPELINE_EMBEDDING_MODEL (default: the local "
    "all-MiniLM-L6-v2, the [embed] extra) instead of the demo's hashed word vectors.",
)
def demo(documents: int, embed: bool) -> int:
    """Generate a collection, cluster it, show the result."""
    service = current_service()
    with showing_progress(_on_terminal()):
        result = service.demo(documents, embed=embed)
    return report_execution(result, service.executions.location(result))
