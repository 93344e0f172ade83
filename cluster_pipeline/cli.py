"""``cluster-pipeline``: ingest collections, define configurations, execute them, read results.

Thin glue over the core and the launcher. Errors print one line (``error: …``) and exit non-zero;
``--json`` prints the seed's response shapes for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError
from cluster_pipeline.core.history import SORT_FIELDS
from cluster_pipeline.core.results import STATUSES, ExecutionResult, format_timestamp

EXIT_ERROR = 2
EXIT_FAILED_EXECUTION = 1


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


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text)


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


def cmd_ingest(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.collections import CollectionStore, read_documents_file

    store = CollectionStore(_lake(args))
    report = store.ingest(args.namespace, args.collection, read_documents_file(args.file), features=args.feature)
    data = {
        "namespace": report.namespace,
        "collection": report.collection,
        "ingested": report.num_documents,
        "total_documents": report.total_documents,
        "features": report.features,
        "part": report.part_key,
    }
    _print(
        data,
        args.json,
        f"Ingested {report.num_documents} documents into {report.namespace}/{report.collection} "
        f"({report.total_documents} in total; features {report.features}).",
    )
    return 0


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


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = _read_config_file(args.config_file) if args.config_file else {}
    data["namespace"] = args.namespace
    for name in ("collection", "feature", "algorithm", "description"):
        if getattr(args, name):
            data[name] = getattr(args, name)
    if args.param:
        data["parameters"] = {**data.get("parameters", {}), **_parameters(args.param)}
    preprocessing = data.setdefault("preprocessing", {})
    if args.pca is not None:
        preprocessing["pca_components"] = None if args.pca == 0 else args.pca
    if args.no_normalize:
        preprocessing["normalize"] = False
    if args.sample_size:
        data["metric_sample_size"] = args.sample_size
    triggers = data.setdefault("triggers", {})
    if args.on_change:
        triggers["on_change"] = True
    if args.schedule:
        triggers["schedule"] = args.schedule
    if "collection" not in data:
        raise ConfigurationError("A configuration needs a collection: pass --collection NAME.")
    return data


def cmd_clusters_create(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.config import ConfigStore, parse_config
    from cluster_pipeline.launcher import open_instance, register_partition

    lake = _lake(args)
    config = parse_config(_config_from_args(args))
    schema = CollectionStore(lake).schema(config.namespace, config.collection)
    if config.feature not in schema.features:
        raise ConfigurationError(
            f"Feature extractor {config.feature!r} not found in collection {config.collection!r} "
            f"(available: {', '.join(schema.features)}); pass --feature."
        )
    with open_instance() as instance:  # first: a deployment whose instance is unreachable gets no half-made config
        ConfigStore(lake).create(config)
        register_partition(instance, config)
    _print(
        config.model_dump(mode="json"),
        args.json,
        f"Created {config.cluster_id} ({config.algorithm} on "
        f"{config.namespace}/{config.collection}). Execute it with: cluster-pipeline execute {config.cluster_id}",
    )
    return 0


def cmd_clusters_list(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.config import ConfigStore

    configs = ConfigStore(_lake(args)).list(args.namespace)
    text = (
        "\n".join(f"{c.cluster_id}  {c.algorithm:<16} {c.collection}  {json.dumps(c.parameters)}" for c in configs)
        or f"No configurations in namespace {args.namespace!r}."
    )
    _print([c.model_dump(mode="json") for c in configs], args.json, text)
    return 0


def cmd_clusters_show(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.config import ConfigStore

    config = ConfigStore(_lake(args)).get(args.namespace, args.cluster_id)
    _print(config.model_dump(mode="json"), args.json, config.model_dump_json(indent=2))
    return 0


def _execute(args: argparse.Namespace, cluster_id: str) -> int:
    from cluster_pipeline.core.config import ConfigStore
    from cluster_pipeline.core.results import ResultStore
    from cluster_pipeline.launcher import execute_in_process, open_instance

    lake = _lake(args)
    config = ConfigStore(lake).get(args.namespace, cluster_id)
    with open_instance() as instance, _progress_bar():
        result = execute_in_process(config, lake, instance)
    _print(result.to_json_dict(), args.json, describe_result(result, ResultStore(lake).uri(result)))
    return 0 if result.status == "completed" else EXIT_FAILED_EXECUTION


def _progress_bar() -> AbstractContextManager[None]:
    """A progress bar on stderr while an execution runs, only when stderr is a terminal."""
    from cluster_pipeline.core.progress import StderrBar, listening

    return listening(StderrBar()) if sys.stderr.isatty() else nullcontext()


def cmd_execute(args: argparse.Namespace) -> int:
    return _execute(args, args.cluster_id)


def _in_flight(namespace: str, cluster_id: str) -> list[ExecutionResult]:
    from cluster_pipeline.launcher import open_instance
    from cluster_pipeline.status import in_flight_executions

    with open_instance() as instance:
        return in_flight_executions(instance, namespace, cluster_id)


def _summary_line(r: ExecutionResult) -> str:
    silhouette = "-" if not r.metrics else format(r.metrics["silhouette_score"], ".3f")
    return (
        f"{r.run_id}  {r.status:<10} {format_timestamp(r.created_at)}  {r.num_points:>8} docs  "
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


def cmd_executions_list(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.config import ConfigStore
    from cluster_pipeline.core.history import HistoryQuery, list_history
    from cluster_pipeline.core.results import ResultStore

    lake = _lake(args)
    ConfigStore(lake).get(args.namespace, args.cluster_id)
    query = HistoryQuery(
        statuses=args.status,
        created_after=_timestamp(args.since),
        created_before=_timestamp(args.until),
        min_clusters=args.min_clusters,
        max_clusters=args.max_clusters,
        min_silhouette=args.min_silhouette,
        max_silhouette=args.max_silhouette,
        sort_by=args.sort,
        descending=not args.ascending,
        limit=args.limit,
        offset=args.offset,
        cursor=args.cursor,
    )
    page = list_history(
        ResultStore(lake),
        args.namespace,
        args.cluster_id,
        query,
        extra=_in_flight(args.namespace, args.cluster_id),
        include_total=args.include_total,
    )
    data: dict[str, Any] = {"results": [r.to_json_dict() for r in page.results], "next_cursor": page.next_cursor}
    if args.include_total:
        data["total"] = page.total
    lines = [_summary_line(r) for r in page.results] or [f"No executions of {args.cluster_id} match."]
    if args.include_total:
        lines.append(f"{page.total} in total")
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    _print(data, args.json, "\n".join(lines))
    return 0


def cmd_executions_latest(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.errors import NotFoundError
    from cluster_pipeline.core.history import HistoryQuery, list_history
    from cluster_pipeline.core.results import ResultStore

    results = ResultStore(_lake(args))
    statuses = args.status or None
    page = list_history(
        results,
        args.namespace,
        args.cluster_id,
        HistoryQuery(statuses=statuses, limit=1),
        extra=_in_flight(args.namespace, args.cluster_id),
    )
    if not page.results:
        raise NotFoundError(f"No executions of {args.cluster_id} yet; start one with `cluster-pipeline execute`.")
    result = page.results[0]
    _print(result.to_json_dict(), args.json, describe_result(result))
    return 0


def cmd_executions_cancel(args: argparse.Namespace) -> int:
    from cluster_pipeline.launcher import open_instance
    from cluster_pipeline.status import cancel_execution

    with open_instance() as instance:
        result = cancel_execution(instance, _lake(args), args.run_id)
    _print(result.to_json_dict(), args.json, describe_result(result))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.collections import CollectionStore

    ids = list(args.document_ids)
    if args.ids_file:
        ids += [line.strip() for line in Path(args.ids_file).read_text().splitlines() if line.strip()]
    removed = CollectionStore(_lake(args)).delete_documents(args.namespace, args.collection, ids)
    _print({"deleted": removed}, args.json, f"Deleted {removed} documents from {args.namespace}/{args.collection}.")
    return 0


def cmd_executions_show(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.errors import NotFoundError
    from cluster_pipeline.core.results import ResultStore
    from cluster_pipeline.launcher import open_instance
    from cluster_pipeline.status import in_flight_execution

    results = ResultStore(_lake(args))
    try:
        result = results.get(args.namespace, args.run_id)
        path: str | None = results.uri(result)
    except NotFoundError:
        with open_instance() as instance:
            in_flight = in_flight_execution(instance, args.namespace, args.run_id)
        if in_flight is None:
            raise
        result, path = in_flight, None
    _print(result.to_json_dict(), args.json, describe_result(result, path))
    return 0


def cmd_executions_report(args: argparse.Namespace) -> int:
    from cluster_pipeline.core.errors import NotFoundError
    from cluster_pipeline.core.report import html_report
    from cluster_pipeline.core.results import ResultStore

    lake = _lake(args)
    result = ResultStore(lake).get(args.namespace, args.run_id)
    images = {}
    for name, uri in result.artifacts.items():
        key = lake.execution_key(result.namespace, result.cluster_id, result.run_id, f"{name}.png")
        try:
            images[name] = lake.storage.read_bytes(key)
        except NotFoundError:
            print(f"warning: picture {uri} is missing; the report is written without it", file=sys.stderr)
    output = Path(args.output or f"{result.run_id}.html")
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(html_report(result, images), encoding="utf-8")
    temporary.replace(output)
    _print({"report": str(output.resolve())}, args.json, f"Wrote {output.resolve()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cluster_pipeline.demo import run_demo

    result, path = run_demo(_lake(args), namespace=args.namespace, num_documents=args.documents)
    _print(result.to_json_dict(), args.json, describe_result(result, path))
    return 0 if result.status == "completed" else EXIT_FAILED_EXECUTION


def _lake(args: argparse.Namespace) -> Any:
    from cluster_pipeline.deployment import environment_lake

    return environment_lake(args.root)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--namespace", default="default", help="namespace to work in (default: %(default)s)")
    common.add_argument("--root", help="data folder (default: $CLUSTER_PIPELINE_ROOT or ./.cluster_data)")
    common.add_argument("--json", action="store_true", help="print JSON")

    parser = argparse.ArgumentParser(prog="cluster-pipeline", description=__doc__.splitlines()[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", parents=[common], help="append documents (Parquet, CSV, JSON Lines)")
    ingest.add_argument("collection")
    ingest.add_argument("file")
    ingest.add_argument("--feature", action="append", help="embedding column (repeatable; default: auto-detect)")
    ingest.set_defaults(handler=cmd_ingest)

    clusters = commands.add_parser("clusters", help="cluster configurations").add_subparsers(
        dest="clusters_command", required=True
    )
    create = clusters.add_parser("create", parents=[common], help="define a configuration")
    create.add_argument("--collection")
    create.add_argument("--feature")
    create.add_argument("--algorithm")
    create.add_argument("--param", action="append", default=[], help="NAME=VALUE estimator parameter (repeatable)")
    create.add_argument("--pca", type=int, help="reduce to N dimensions first (0: never)")
    create.add_argument("--no-normalize", action="store_true", help="skip L2 normalisation")
    create.add_argument("--sample-size", type=int, help="silhouette sample size")
    create.add_argument("--on-change", action="store_true", help="execute when the collection changes")
    create.add_argument("--schedule", help="cron, or 'nightly'")
    create.add_argument("--description")
    create.add_argument("--config-file", help="JSON file with the full configuration")
    create.set_defaults(handler=cmd_clusters_create)
    listing = clusters.add_parser("list", parents=[common], help="list configurations")
    listing.set_defaults(handler=cmd_clusters_list)
    show = clusters.add_parser("show", parents=[common], help="show one configuration")
    show.add_argument("cluster_id")
    show.set_defaults(handler=cmd_clusters_show)

    delete = commands.add_parser("delete", parents=[common], help="remove documents from a collection by id")
    delete.add_argument("collection")
    delete.add_argument("document_ids", nargs="*")
    delete.add_argument("--ids-file", help="file with one document id per line")
    delete.set_defaults(handler=cmd_delete)

    execute = commands.add_parser("execute", parents=[common], help="execute a configuration through Dagster")
    execute.add_argument("cluster_id")
    execute.set_defaults(handler=cmd_execute)

    executions = commands.add_parser("executions", help="execution history").add_subparsers(
        dest="executions_command", required=True
    )
    ex_list = executions.add_parser("list", parents=[common], help="executions of one configuration")
    ex_list.add_argument("cluster_id")
    ex_list.set_defaults(handler=cmd_executions_list)
    ex_list.add_argument("--status", action="append", choices=STATUSES, help="keep these statuses (repeatable)")
    ex_list.add_argument("--since", help="created at or after (ISO 8601)")
    ex_list.add_argument("--until", help="created before (ISO 8601)")
    ex_list.add_argument("--min-clusters", type=int)
    ex_list.add_argument("--max-clusters", type=int)
    ex_list.add_argument("--min-silhouette", type=float)
    ex_list.add_argument("--max-silhouette", type=float)
    ex_list.add_argument("--sort", default="created_at", choices=SORT_FIELDS)
    ex_list.add_argument("--ascending", action="store_true", help="oldest / lowest first")
    ex_list.add_argument("--limit", type=int, default=20)
    ex_list.add_argument("--offset", type=int, default=0)
    ex_list.add_argument("--cursor", help="next_cursor of the previous page")
    ex_list.add_argument("--include-total", action="store_true")
    ex_latest = executions.add_parser("latest", parents=[common], help="the newest execution of a configuration")
    ex_latest.add_argument("cluster_id")
    ex_latest.add_argument("--status", action="append", choices=STATUSES)
    ex_latest.set_defaults(handler=cmd_executions_latest)
    ex_cancel = executions.add_parser("cancel", parents=[common], help="stop a pending or processing execution")
    ex_cancel.add_argument("run_id")
    ex_cancel.set_defaults(handler=cmd_executions_cancel)
    ex_report = executions.add_parser("report", parents=[common], help="write a self-contained HTML report")
    ex_report.add_argument("run_id")
    ex_report.add_argument("--output", help="HTML file to write (default: RUN_ID.html)")
    ex_report.set_defaults(handler=cmd_executions_report)
    ex_show = executions.add_parser("show", parents=[common], help="one ExecutionResult")
    ex_show.add_argument("run_id")
    ex_show.set_defaults(handler=cmd_executions_show)

    demo = commands.add_parser("demo", parents=[common], help="generate a collection, cluster it, show the result")
    demo.add_argument("--documents", type=int, default=3000)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.root:
        os.environ["CLUSTER_PIPELINE_ROOT"] = str(Path(args.root).expanduser().resolve())
    try:
        return int(args.handler(args))
    except ClusterPipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as error:  # a file the user named cannot be read or written
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
