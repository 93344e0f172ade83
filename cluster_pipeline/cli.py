"""``cluster-pipeline``: ingest collections, define configurations, execute them, read results.

Thin glue over the core and the launcher, on Click. The options every command shares
(``--namespace``, ``--root``, ``--json``) are declared once and work before or after the command.
Errors are one line on stderr (``error: …``; under ``--json`` a JSON object) with exit status 2; a
failed execution prints its result, its error and where the full logs are, with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError, NotFoundError
from cluster_pipeline.core.history import SORT_FIELDS
from cluster_pipeline.core.results import STATUSES, ExecutionResult, format_timestamp

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cluster_pipeline.core.config import ClusterConfig
    from cluster_pipeline.core.lake import Lake

EXIT_ERROR = 2
EXIT_FAILED_EXECUTION = 1
EXIT_INTERRUPTED = 130
COMMON_OPTIONS_HELP = "--namespace, --root and --json may be given before or after the command."


@dataclass
class Settings:
    """The shared options, from wherever on the command line they were given (the last one wins)."""

    namespace: str = "default"
    root: str | None = None
    json: bool = False

    def lake(self) -> Lake:
        from cluster_pipeline.core.lake import Lake

        return Lake.local(self.root) if self.root else Lake.local()

    def emit(self, data: Any, text: str) -> None:
        try:
            click.echo(json.dumps(data, indent=2, default=str) if self.json else text)
        except BrokenPipeError:  # `… | head` has read what it wanted: the command still succeeded
            _silence_stdout()


def _silence_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _settings() -> Settings:
    return click.get_current_context().find_root().ensure_object(Settings)


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:  # not given here: keep what an earlier position said
            return
        settings = ctx.find_root().ensure_object(Settings)
        if name == "root":
            value = str(Path(value).expanduser().resolve())
            os.environ["CLUSTER_PIPELINE_ROOT"] = value  # the Dagster instance lives in the data root too
        setattr(settings, name, value)

    return callback


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--namespace``, ``--root``, ``--json`` on a group or command; any position sets them."""
    for decorator in (
        click.option("--json", "json_", is_flag=True, default=None, expose_value=False, is_eager=True,
                     callback=_remember("json"), help="Print JSON (errors too, on stderr)."),
        click.option("--root", default=None, expose_value=False, is_eager=True, callback=_remember("root"),
                     metavar="DIR", help="Data folder (default: $CLUSTER_PIPELINE_ROOT or ./.cluster_data)."),
        click.option("--namespace", default=None, expose_value=False, is_eager=True,
                     callback=_remember("namespace"), help="Namespace to work in (default: default)."),
    ):  # fmt: skip
        command = decorator(command)
    return command


def _open_instance() -> DagsterInstance:
    from cluster_pipeline.launcher import open_instance

    return open_instance()


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parameters(pairs: Sequence[str]) -> dict[str, Any]:
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"Bad --param {pair!r}: write NAME=VALUE, e.g. --param n_clusters=8.")
        parameters[name] = _parse_value(value)
    return parameters


def describe_result(result: ExecutionResult, path: str | None = None) -> str:
    """A readable summary of one ExecutionResult."""
    lines = [
        f"{result.run_id}  {result.status}  configuration {result.cluster_id} ({result.algorithm} on "
        f"{result.namespace}/{result.collection})",
        f"  created {format_timestamp(result.created_at)}  completed {format_timestamp(result.completed_at) or '-'}",
    ]
    if result.status == "failed":
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
    lines.append(f"  {result.num_points} documents, {result.num_clusters} clusters, {result.num_noise} noise")
    if result.metrics:
        m = result.metrics
        lines.append(
            f"  silhouette {m['silhouette_score']:.3f}  davies-bouldin {m['davies_bouldin_index']:.3f}  "
            f"calinski-harabasz {m['calinski_harabasz_score']:.1f}  ({m['description']})"
        )
    for centroid in result.centroids or []:
        lines.append(f"  {centroid.cluster_id:>6} {centroid.num_members:>7}  {centroid.label}")
        lines.append(f"  {'':>6} {'':>7}  keywords: {', '.join(centroid.keywords)}")
    if path:
        lines.append(f"  result: {path}")
    return "\n".join(lines)


def _summary_line(r: ExecutionResult) -> str:
    silhouette = "-" if not r.metrics else format(r.metrics["silhouette_score"], ".3f")
    documents = (
        f"{r.num_points:>8} docs" if r.num_points or r.status not in ("pending", "processing") else f"{'-':>8} docs"
    )
    return (
        f"{r.run_id}  {r.status:<10} {format_timestamp(r.created_at)}  {documents}  "
        f"{r.num_clusters:>4} clusters  silhouette {silhouette}"
    )


def _timestamp(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"Bad timestamp {text!r}: use ISO 8601, e.g. 2025-11-13T13:20:40Z.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _warn(message: str) -> None:
    settings = _settings()
    click.echo(json.dumps({"warning": message}) if settings.json else f"warning: {message}", err=True)


def _config(lake: Lake, cluster_id: str) -> ClusterConfig:
    from cluster_pipeline.core.config import ConfigStore

    return ConfigStore(lake).get(_settings().namespace, cluster_id)


def _settled_in_flight(instance: DagsterInstance, lake: Lake, config: ClusterConfig) -> list[ExecutionResult]:
    """The configuration's runs brought up to date (dead or ended runs recorded as failed), then its
    pending and processing executions."""
    from cluster_pipeline.status import in_flight_executions, reconcile_runs

    reconcile_runs(instance, lake, config.partition_key)
    return in_flight_executions(instance, config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=COMMON_OPTIONS_HELP)
@common_options
def cli() -> None:
    """Cluster document collections by their embeddings, through Dagster."""


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--feature", "features", multiple=True, help="Embedding column (repeatable; default: auto-detect).")
@common_options
def ingest(collection: str, file: str, features: tuple[str, ...]) -> int:
    """Append documents from FILE (Parquet, CSV, JSON Lines) to COLLECTION."""
    from cluster_pipeline.core.collections import CollectionStore, read_documents_file

    settings = _settings()
    report = CollectionStore(settings.lake()).ingest(
        settings.namespace, collection, read_documents_file(file), features=list(features) or None
    )
    data = {
        "namespace": report.namespace,
        "collection": report.collection,
        "ingested": report.num_documents,
        "total_documents": report.total_documents,
        "features": report.features,
        "part": report.part_key,
    }
    settings.emit(
        data,
        f"Ingested {report.num_documents} documents into {report.namespace}/{report.collection} "
        f"({report.total_documents} in total; features {report.features}).",
    )
    return 0


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.argument("document_ids", nargs=-1)
@click.option("--ids-file", type=click.Path(dir_okay=False), help="File with one document id per line.")
@common_options
def delete(collection: str, document_ids: tuple[str, ...], ids_file: str | None) -> int:
    """Remove documents from COLLECTION by id (one atomic tombstone)."""
    from cluster_pipeline.core.collections import CollectionStore

    settings = _settings()
    ids = list(document_ids)
    if ids_file:
        ids += [line.strip() for line in Path(ids_file).read_text().splitlines() if line.strip()]
    removed = CollectionStore(settings.lake()).delete_documents(settings.namespace, collection, ids)
    settings.emit({"deleted": removed}, f"Deleted {removed} documents from {settings.namespace}/{collection}.")
    return 0


@cli.group(epilog=COMMON_OPTIONS_HELP)
@common_options
def clusters() -> None:
    """Cluster configurations."""


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"--config-file {path!r} is not valid JSON ({error.msg} at line {error.lineno})."
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"--config-file {path!r} must hold a JSON object of configuration fields.")
    return data


@clusters.command("create", epilog=COMMON_OPTIONS_HELP)
@click.option("--collection")
@click.option("--feature")
@click.option("--algorithm")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Estimator parameter (repeatable).")
@click.option("--pca", type=click.IntRange(min=0), help="Reduce to N dimensions first (0: never).")
@click.option("--no-normalize", is_flag=True, help="Skip L2 normalisation.")
@click.option("--sample-size", type=click.IntRange(min=100), help="Silhouette sample size.")
@click.option("--on-change", is_flag=True, help="Execute when the collection changes.")
@click.option("--schedule", help="Cron (5 fields), or 'nightly'.")
@click.option("--description")
@click.option("--config-file", type=click.Path(dir_okay=False), help="JSON file with the full configuration.")
@common_options
def clusters_create(**options: Any) -> int:
    """Define a configuration (validated now: parameters, cron, time zone)."""
    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.config import ConfigStore, parse_config
    from cluster_pipeline.launcher import register_partition

    settings = _settings()
    data: dict[str, Any] = _read_config_file(options["config_file"]) if options["config_file"] else {}
    data["namespace"] = settings.namespace
    data.update(
        {name: options[name] for name in ("collection", "feature", "algorithm", "description") if options[name]}
    )
    if options["params"]:
        data["parameters"] = {**data.get("parameters", {}), **_parameters(options["params"])}
    preprocessing = data.setdefault("preprocessing", {})
    if options["pca"] is not None:
        preprocessing["pca_components"] = options["pca"] or None
    if options["no_normalize"]:
        preprocessing["normalize"] = False
    if options["sample_size"]:
        data["metric_sample_size"] = options["sample_size"]
    triggers = data.setdefault("triggers", {})
    if options["on_change"]:
        triggers["on_change"] = True
    if options["schedule"]:
        triggers["schedule"] = options["schedule"]
    if "collection" not in data:
        raise ConfigurationError("A configuration needs a collection: pass --collection NAME.")
    config = parse_config(data)
    lake = settings.lake()
    schema = CollectionStore(lake).schema(config.namespace, config.collection)
    if config.feature not in schema.features:
        raise ConfigurationError(
            f"Feature extractor {config.feature!r} not found in collection {config.collection!r} "
            f"(available: {', '.join(schema.features)}); pass --feature."
        )
    ConfigStore(lake).create(config)
    with _open_instance() as instance:
        register_partition(instance, config)
    settings.emit(
        config.model_dump(mode="json"),
        f"Created {config.cluster_id} ({config.algorithm} on {config.namespace}/{config.collection}). "
        f"Execute it with: cluster-pipeline execute {config.cluster_id}",
    )
    return 0


@clusters.command("list", epilog=COMMON_OPTIONS_HELP)
@common_options
def clusters_list() -> int:
    """List the namespace's configurations (unreadable files are skipped with a warning)."""
    from cluster_pipeline.core.config import ConfigStore

    settings = _settings()
    configs, problems = ConfigStore(settings.lake()).scan(settings.namespace)
    for problem in problems:
        _warn(problem)
    text = (
        "\n".join(f"{c.cluster_id}  {c.algorithm:<16} {c.collection}  {json.dumps(c.parameters)}" for c in configs)
        or f"No configurations in namespace {settings.namespace!r}."
    )
    settings.emit([c.model_dump(mode="json") for c in configs], text)
    return 0


@clusters.command("show", epilog=COMMON_OPTIONS_HELP)
@click.argument("cluster_id")
@common_options
def clusters_show(cluster_id: str) -> int:
    """Show one configuration."""
    settings = _settings()
    config = _config(settings.lake(), cluster_id)
    settings.emit(config.model_dump(mode="json"), config.model_dump_json(indent=2))
    return 0


def _progress_bar() -> AbstractContextManager[None]:
    """A progress bar on stderr while an execution runs, only when stderr is a terminal."""
    from cluster_pipeline.core.progress import StderrBar, listening

    return listening(StderrBar()) if sys.stderr.isatty() and not _settings().json else nullcontext()


def _report_execution(result: ExecutionResult, path: str | None) -> int:
    """Print an execution's result; a failed one also gets its one-line error and where its logs are."""
    from cluster_pipeline.core.execution import INTERRUPTED_MESSAGE

    settings = _settings()
    settings.emit(result.to_json_dict(), describe_result(result, path))
    if result.status == "completed":
        return 0
    if settings.json:
        click.echo(json.dumps({"error": {"type": "ExecutionFailed", "message": result.error_message,
                                         "run_id": result.run_id, "dagster_run_id": result.dagster_run_id}}),
                   err=True)  # fmt: skip
    else:
        click.echo(f"error: {result.error_message}", err=True)
        click.echo(f"  full logs: Dagster run {result.dagster_run_id} (`dagster dev`, Runs)", err=True)
    return EXIT_INTERRUPTED if result.error_message == INTERRUPTED_MESSAGE else EXIT_FAILED_EXECUTION


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("cluster_id")
@common_options
def execute(cluster_id: str) -> int:
    """Execute a configuration now, through Dagster, and print its ExecutionResult."""
    from cluster_pipeline.core.results import ResultStore
    from cluster_pipeline.launcher import execute_in_process

    lake = _settings().lake()
    config = _config(lake, cluster_id)
    with _open_instance() as instance, _progress_bar():
        result = execute_in_process(config, lake, instance)
    return _report_execution(result, ResultStore(lake).uri(result))


@cli.group(epilog=COMMON_OPTIONS_HELP)
@common_options
def executions() -> None:
    """Execution history: list, latest, show, cancel, report."""


@executions.command("list", epilog=COMMON_OPTIONS_HELP)
@click.argument("cluster_id")
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
@click.option("--include-total", is_flag=True)
@common_options
def executions_list(cluster_id: str, **options: Any) -> int:
    """Executions of one configuration, pending and processing ones included."""
    from cluster_pipeline.core.history import HistoryQuery, list_history
    from cluster_pipeline.core.results import ResultStore

    settings = _settings()
    lake = settings.lake()
    config = _config(lake, cluster_id)
    query = HistoryQuery(
        statuses=options["statuses"] or None,
        created_after=_timestamp(options["since"]),
        created_before=_timestamp(options["until"]),
        min_clusters=options["min_clusters"],
        max_clusters=options["max_clusters"],
        min_silhouette=options["min_silhouette"],
        max_silhouette=options["max_silhouette"],
        sort_by=options["sort"],
        descending=not options["ascending"],
        limit=options["limit"],
        offset=options["offset"],
        cursor=options["cursor"],
    )
    with _open_instance() as instance:
        in_flight = _settled_in_flight(instance, lake, config)
    page = list_history(
        ResultStore(lake), settings.namespace, cluster_id, query, extra=in_flight,
        include_total=options["include_total"], on_skip=_warn,
    )  # fmt: skip
    data: dict[str, Any] = {"results": [r.to_json_dict() for r in page.results], "next_cursor": page.next_cursor}
    lines = [_summary_line(r) for r in page.results] or [f"No executions of {cluster_id} match."]
    if options["include_total"]:
        data["total"] = page.total
        lines.append(f"{page.total} in total")
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    settings.emit(data, "\n".join(lines))
    return 0


@executions.command("latest", epilog=COMMON_OPTIONS_HELP)
@click.argument("cluster_id")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these (repeatable).")
@common_options
def executions_latest(cluster_id: str, statuses: tuple[str, ...]) -> int:
    """The newest execution of a configuration."""
    from cluster_pipeline.core.history import HistoryQuery, list_history
    from cluster_pipeline.core.results import ResultStore

    settings = _settings()
    lake = settings.lake()
    config = _config(lake, cluster_id)
    with _open_instance() as instance:
        in_flight = _settled_in_flight(instance, lake, config)
    results = ResultStore(lake)
    page = list_history(
        results, settings.namespace, cluster_id, HistoryQuery(statuses=statuses or None, limit=1), extra=in_flight
    )
    if not page.results:
        if statuses:
            total = list_history(results, settings.namespace, cluster_id, HistoryQuery(limit=1), extra=in_flight,
                                 include_total=True).total  # fmt: skip
            raise NotFoundError(
                f"No {' or '.join(statuses)} executions of {cluster_id} ({total} in other statuses; "
                "list them with `cluster-pipeline executions list`)."
            )
        raise NotFoundError(f"No executions of {cluster_id} yet; start one with `cluster-pipeline execute`.")
    settings.emit(page.results[0].to_json_dict(), describe_result(page.results[0]))
    return 0


@executions.command("show", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@common_options
def executions_show(run_id: str) -> int:
    """One ExecutionResult (pending and processing ones too)."""
    from cluster_pipeline.core.results import ResultStore
    from cluster_pipeline.settings import PARTITION_TAG
    from cluster_pipeline.status import find_run, in_flight_execution, reconcile_runs

    settings = _settings()
    lake = settings.lake()
    results = ResultStore(lake)
    try:
        result = results.get(settings.namespace, run_id)
        path: str | None = results.uri(result)
    except NotFoundError:
        with _open_instance() as instance:
            reconcile_runs(instance, lake, find_run(instance, settings.namespace, run_id).tags[PARTITION_TAG])
            in_flight = in_flight_execution(instance, lake, settings.namespace, run_id)
        if in_flight is None:
            result = results.get(settings.namespace, run_id)  # recorded just now, or raises NotFoundError
            path = results.uri(result)
        else:
            result, path = in_flight, None
    settings.emit(result.to_json_dict(), describe_result(result, path))
    return 0


@executions.command("cancel", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@common_options
def executions_cancel(run_id: str) -> int:
    """Stop a pending or processing execution; it ends failed, saying it was cancelled."""
    from cluster_pipeline.status import cancel_execution

    settings = _settings()
    with _open_instance() as instance:
        result = cancel_execution(instance, settings.lake(), settings.namespace, run_id)
    settings.emit(result.to_json_dict(), describe_result(result))
    return 0


@executions.command("report", epilog=COMMON_OPTIONS_HELP)
@click.argument("run_id")
@click.option("--output", type=click.Path(), help="HTML file or existing folder (default: RUN_ID.html here).")
@common_options
def executions_report(run_id: str, output: str | None) -> int:
    """Write a self-contained HTML report of one execution."""
    from cluster_pipeline.core.report import html_report
    from cluster_pipeline.core.results import ResultStore

    settings = _settings()
    lake = settings.lake()
    result = ResultStore(lake).get(settings.namespace, run_id)
    images = {}
    for name, uri in result.artifacts.items():
        key = lake.execution_key(result.namespace, result.cluster_id, result.run_id, f"{name}.png")
        try:
            images[name] = lake.storage.read_bytes(key)
        except NotFoundError:
            _warn(f"picture {uri} is missing; the report is written without it")
    target = Path(output or ".").expanduser()
    if output is None or target.is_dir():
        target = target / f"{result.run_id}.html"
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(html_report(result, images), encoding="utf-8")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    settings.emit({"report": str(target.resolve())}, f"Wrote {target.resolve()}")
    return 0


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.option("--documents", default=3000, show_default=True, type=click.IntRange(min=60),
              help="Documents to generate (at least 60: ten per topic).")  # fmt: skip
@common_options
def demo(documents: int) -> int:
    """Generate a collection, cluster it, show the result."""
    from cluster_pipeline.demo import run_demo

    settings = _settings()
    result, path = run_demo(settings.lake(), namespace=settings.namespace, num_documents=documents)
    return _report_execution(result, path)


def _error(kind: str, message: str, as_json: bool) -> None:
    text = json.dumps({"error": {"type": kind, "message": message}}) if as_json else f"error: {message}"
    click.echo(text, err=True)


def _guarded(run: Callable[[], int], wants_json: Callable[[], bool]) -> int:
    """Exit statuses and one-line errors for everything a command can end with."""
    stdout = sys.stdout
    try:
        return run()
    except click.exceptions.Exit as done:  # --help and friends
        return done.exit_code
    except click.ClickException as error:  # usage errors: unknown option, bad value, missing argument
        hint = f" (see `{error.ctx.command_path} --help`)" if isinstance(error, click.UsageError) and error.ctx else ""
        _error("UsageError", error.format_message() + hint, wants_json())
        return error.exit_code
    except ClusterPipelineError as error:
        _error(type(error).__name__, str(error), wants_json())
        return EXIT_ERROR
    except BrokenPipeError:  # `… | head` closed the pipe: the reader has what it wanted
        _silence_stdout()
        return 0
    except SystemExit as done:  # Click exits by itself when its help text meets a closed pipe
        return 0 if sys.stdout is not stdout else int(done.code or 0)
    except OSError as error:  # a file the user named cannot be read or written
        _error("OSError", f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), wants_json())
        return EXIT_ERROR
    except (KeyboardInterrupt, click.Abort):
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = Settings()

    def run() -> int:
        return int(cli.main(args=args, prog_name="cluster-pipeline", standalone_mode=False, obj=settings) or 0)

    code = _guarded(run, lambda: settings.json or "--json" in args)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


if __name__ == "__main__":
    sys.exit(main())
