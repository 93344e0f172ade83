"""Commands on executions: ``execute`` (now, or queued with ``--no-wait``), the ``executions`` group
(list, latest, show, wait, cancel, report, hierarchy) and ``demo``. Every command touching a configuration
settles its runs first (a run whose worker died is recorded as failed), so the lifecycle guarantee
holds without a daemon. The history of a deleted configuration (``clusters delete --keep-history``)
stays readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cluster_pipeline.cli.app import (
    COMMON_OPTIONS_HELP,
    EXIT_TIMEOUT,
    cli,
    common_options,
    configuration,
    current_settings,
    dagster_instance,
    parse_timestamp,
    read_json_option,
    warn,
)
from cluster_pipeline.cli.output import (
    describe_result,
    progress_bar,
    report_execution,
    stats_line,
    summary_line,
)
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.store.history import FILTER_FIELDS, SORT_FIELDS
from cluster_pipeline.core.store.results import STATUSES, ExecutionResult

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cluster_pipeline.core.config.model import ClusterConfig
    from cluster_pipeline.core.store.lake import Lake


def settled_in_flight(instance: DagsterInstance, lake: Lake, config: ClusterConfig) -> list[ExecutionResult]:
    """The configuration's runs brought up to date (dead or ended runs recorded as failed), then its
    pending and processing executions."""
    from cluster_pipeline.runs import in_flight_executions, reconcile_runs

    reconcile_runs(instance, lake, config.partition_key)
    return in_flight_executions(instance, config)


def settled_history(instance: DagsterInstance, lake: Lake, reference: str) -> tuple[str, str, list[ExecutionResult]]:
    """The ``clust_…`` id, the name to show and ``settled_in_flight`` of a configuration named by
    ``reference`` (its name or id); for one deleted with its history kept (named by its id, as its name is
    released), nothing in flight. NotFoundError if there is neither."""
    from cluster_pipeline.core.ids import is_cluster_id
    from cluster_pipeline.core.store.results import ResultStore

    try:
        config = configuration(lake, reference)
    except NotFoundError:
        if is_cluster_id(reference) and ResultStore(lake).result_keys(current_settings().namespace, reference):
            return reference, reference, []
        raise
    return config.cluster_id, config.display_name, settled_in_flight(instance, lake, config)


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--no-wait", is_flag=True,
              help="Queue it in Dagster and return at once (run_id, status pending); the daemon runs it.")  # fmt: skip
@common_options
def execute(configuration_name: str, no_wait: bool) -> int:
    """Execute a configuration (its name or clust_ id) through Dagster and print its ExecutionResult (or,
    with --no-wait, queue it)."""
    from cluster_pipeline.core.store.results import ResultStore
    from cluster_pipeline.runs import execute_in_process, queue_daemon_running, submit_execution

    settings = current_settings()
    lake = settings.lake()
    config = configuration(lake, configuration_name)
    if no_wait:
        with dagster_instance() as instance:
            pending = submit_execution(config, lake, instance)
            if not queue_daemon_running(instance):
                warn(
                    "no Dagster daemon has started queued runs here lately: the execution stays pending until one "
                    "runs (`dagster dev`, or `dagster-daemon run`, on this instance)"
                )
        settings.emit(
            pending.to_json_dict(),
            f"{pending.run_id}  pending  (Dagster run {pending.dagster_run_id})\n"
            f"  follow it: cluster-pipeline executions wait {pending.run_id}",
        )
        return 0
    with dagster_instance() as instance, progress_bar():
        result = execute_in_process(config, lake, instance)
    return report_execution(result, ResultStore(lake).uri(result))


@cli.group(epilog=COMMON_OPTIONS_HELP)
@common_options
def executions() -> None:
    """Execution history: list, latest, show, cancel, report."""


@executions.command("list", epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Keep these (repeatable).")
@click.option("--since", help="Created at or after (ISO 8601).")
@click.option("--until", help="Created before (ISO 8601).")
@click.option("--min-clusters", type=int)
@click.option("--max-clusters", type=int)
@click.option("--min-silhouette", type=float)
@click.option("--max-silhouette", type=float)
@click.option("--sort", default="created_at", show_default=True, type=click.Choice(SORT_FIELDS))
@click.option("--ascending", is_flag=True, help="Oldest / lowest first.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--cursor", help="next_cursor of the previous page.")
@click.option("--filter", "filter_", metavar="JSON|@FILE",
              help=f"AND/OR/NOT over {', '.join(FILTER_FIELDS)}.")  # fmt: skip
@click.option("--search", help="Text in the clusters' labels or keywords, or in the error message (any case).")
@click.option("--include-total", is_flag=True, help="Also count all matches: total, by status, mean silhouette.")
@common_options
def executions_list(configuration_name: str, **options: Any) -> int:
    """Executions of one configuration (its name or clust_ id), pending and processing ones included."""
    from cluster_pipeline.core.store.filters import parse_filter
    from cluster_pipeline.core.store.history import HistoryQuery, list_history
    from cluster_pipeline.core.store.results import ResultStore

    settings = current_settings()
    lake = settings.lake()
    query = HistoryQuery(
        statuses=options["statuses"] or None,
        created_after=parse_timestamp(options["since"]),
        created_before=parse_timestamp(options["until"]),
        min_clusters=options["min_clusters"],
        max_clusters=options["max_clusters"],
        min_silhouette=options["min_silhouette"],
        max_silhouette=options["max_silhouette"],
        sort_by=options["sort"],
        descending=not options["ascending"],
        limit=options["limit"],
        offset=options["offset"],
        cursor=options["cursor"],
        filter=None if options["filter_"] is None else parse_filter(read_json_option(options["filter_"], "--filter")),
        search=options["search"],
    )
    with dagster_instance() as instance:
        cluster_id, shown, in_flight = settled_history(instance, lake, configuration_name)
    page = list_history(
        ResultStore(lake), settings.namespace, cluster_id, query, extra=in_flight,
        include_total=options["include_total"], on_skip=warn,
    )  # fmt: skip
    data: dict[str, Any] = {"results": [r.to_json_dict() for r in page.results], "next_cursor": page.next_cursor}
    lines = [summary_line(r) for r in page.results] or [f"No executions of {shown} match."]
    if options["include_total"] and page.stats is not None:
        data["total"], data["stats"] = page.total, page.stats
        lines.append(stats_line(page.total or 0, page.stats))
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    settings.emit(data, "\n".join(lines))
    return 0


@executions.command("latest", epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these (repeatable).")
@common_options
def executions_latest(configuration_name: str, statuses: tuple[str, ...]) -> int:
    """The newest execution of a configuration (its name or clust_ id)."""
    from cluster_pipeline.core.store.history import HistoryQuery, list_history
    from cluster_pipeline.core.store.results import ResultStore

    settings = current_settings()
    lake = settings.lake()
    with dagster_instance() as instance:
        cluster_id, shown, in_flight = settled_history(instance, lake, configuration_name)
    results = ResultStore(lake)
    page = list_history(
        results, settings.namespace, cluster_id, HistoryQuery(statuses=statuses or None, limit=1), extra=in_flight
    )
    if not page.results:
        if statuses:
            total = list_history(results, settings.namespace, cluster_id, HistoryQuery(limit=1), extra=in_flight,
                                 include_total=True).total  # fmt: skip
            raise NotFoundError(
                f"No {' or '.join(statuses)} executions of {shown} ({total} in other statuses; "
                "list them with `cluster-pipeline executions list`)."
            )
        raise NotFoundError(f"No executions of {shown} yet; start one with `cluster-pipeline execute`.")
    settings.emit(page.results[0].to_json_dict(), describe_result(page.results[0]))
    return 0


@executions.command("show", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@common_options
def executions_show(run_id: str) -> int:
    """One ExecutionResult (pending and processing ones too)."""
    from cluster_pipeline.core.store.results import ResultStore
    from cluster_pipeline.runs import find_run, in_flight_execution, reconcile_runs
    from cluster_pipeline.settings import PARTITION_TAG

    settings = current_settings()
    lake = settings.lake()
    results = ResultStore(lake)
    try:
        result = results.get(settings.namespace, run_id)
        path: str | None = results.uri(result)
    except NotFoundError:
        with dagster_instance() as instance:
            reconcile_runs(instance, lake, find_run(instance, settings.namespace, run_id).tags[PARTITION_TAG])
            in_flight = in_flight_execution(instance, lake, settings.namespace, run_id)
        if in_flight is None:
            result = results.get(settings.namespace, run_id)  # recorded just now, or raises NotFoundError
            path = results.uri(result)
        else:
            result, path = in_flight, None
    settings.emit(result.to_json_dict(), describe_result(result, path))
    return 0


@executions.command("wait", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after this many seconds (exit status 124).")
@common_options
def executions_wait(run_id: str, timeout: float | None) -> int:
    """Wait until an execution is completed or failed, then print it (exit status as `execute`)."""
    from cluster_pipeline.core.store.results import ResultStore
    from cluster_pipeline.runs import in_flight_execution, wait_for_execution

    settings = current_settings()
    lake = settings.lake()
    with dagster_instance() as instance:
        result = wait_for_execution(instance, lake, settings.namespace, run_id, timeout)
        if result is None:
            still = in_flight_execution(instance, lake, settings.namespace, run_id)
    if result is not None:
        return report_execution(result, ResultStore(lake).uri(result))
    status = still.status if still is not None else "in flight"
    if still is not None:
        settings.emit(still.to_json_dict(), describe_result(still))
    message = (
        f"Execution {run_id} is still {status} after {timeout:g} s; wait again, or stop it with "
        f"`cluster-pipeline executions cancel {run_id}`."
    )
    click.echo(json.dumps({"error": {"type": "Timeout", "message": message}}) if settings.json else f"error: {message}",
               err=True)  # fmt: skip
    return EXIT_TIMEOUT


@executions.command("cancel", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@common_options
def executions_cancel(run_id: str) -> int:
    """Stop a pending or processing execution; it ends failed, saying it was cancelled."""
    from cluster_pipeline.runs import cancel_execution

    settings = current_settings()
    with dagster_instance() as instance:
        result = cancel_execution(instance, settings.lake(), settings.namespace, run_id)
    settings.emit(result.to_json_dict(), describe_result(result))
    return 0


@executions.command("report", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@click.option("--output", type=click.Path(), help="HTML file or existing folder (default: RUN_ID.html here).")
@click.option("--dagster-url", metavar="URL",
              help="The Dagster UI the report links the run to (default: $CLUSTER_PIPELINE_DAGSTER_URL or "
                   "http://localhost:3000).")  # fmt: skip
@common_options
def executions_report(run_id: str, output: str | None, dagster_url: str | None) -> int:
    """Write a self-contained HTML report of one execution (pictures, checks, interactive map, drift)."""
    from cluster_pipeline.core.render.report import build_report
    from cluster_pipeline.core.store.results import ResultStore

    settings = current_settings()
    lake = settings.lake()
    result = ResultStore(lake).get(settings.namespace, run_id)
    page, problems = build_report(lake, result, dagster_url=dagster_url)
    for problem in problems:
        warn(problem)
    target = Path(output or ".").expanduser()
    if output is None or target.is_dir():
        target = target / f"{result.run_id}.html"
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    settings.emit({"report": str(target.resolve())}, f"Wrote {target.resolve()}")
    return 0


@executions.command("hierarchy", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@click.option("--groups", type=click.IntRange(min=1), help="Cut the tree into this many topics, with merged labels.")
@common_options
def executions_hierarchy(run_id: str, groups: int | None) -> int:
    """The topic tree of one execution (merges closest first), or its cut into --groups topics."""
    from dataclasses import asdict

    from cluster_pipeline.core.store.results import ResultStore
    from cluster_pipeline.core.topics.hierarchy import coarse_topics

    settings = current_settings()
    result = ResultStore(settings.lake()).get(settings.namespace, run_id)
    if not result.hierarchy:
        raise NotFoundError(f"Execution {run_id} has no topic hierarchy (it has fewer than 2 clusters, or failed).")
    if groups is not None:
        topics = coarse_topics(result, groups)
        lines = [f"{t.id:>6} {t.num_members:>7}  {t.label}  ({', '.join(t.clusters)})" for t in topics]
        settings.emit({"run_id": run_id, "groups": [asdict(t) for t in topics]}, "\n".join(lines))
        return 0
    nodes = result.hierarchy["nodes"]
    lines = [
        f"{n['id']:>6} {n['distance']:.3f} {n['num_members']:>7}  {n['label']}  = {' + '.join(n['children'])}"
        for n in nodes
    ]
    settings.emit(result.hierarchy, "\n".join(lines))
    return 0


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.option("--documents", default=3000, show_default=True, type=click.IntRange(min=60),
              help="Documents to generate (at least 60: ten per topic).")  # fmt: skip
@common_options
def demo(documents: int) -> int:
    """Generate a collection, cluster it, show the result."""
    from cluster_pipeline.demo import run_demo

    settings = current_settings()
    result, path = run_demo(settings.lake(), namespace=settings.namespace, num_documents=documents)
    return report_execution(result, path)
