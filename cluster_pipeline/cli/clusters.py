"""The ``clusters`` group: configurations over their life (create, list, show, update, delete).

``create`` and ``update`` take the same options (``configuration_options``) and build the same
JSON configuration from them (``apply_options``): ``create`` over an empty one (or a
``--config-file``), ``update`` over the stored one. Both check it against the collection (features,
filter fields and types, attribute columns) before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from cluster_pipeline.cli.app import (
    COMMON_OPTIONS_HELP,
    cli,
    common_options,
    configuration,
    current_settings,
    dagster_instance,
    read_json_option,
    warn,
)
from cluster_pipeline.core.errors import ConfigurationError


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(pairs: Sequence[str], option: str, example: str) -> list[tuple[str, Any]]:
    parsed = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"Bad {option} {pair!r}: write NAME=VALUE, e.g. {option} {example}.")
        parsed.append((name, _parse_value(value)))
    return parsed


def _read_config_file(path: str) -> dict[str, Any]:
    data = read_json_option("@" + path, f"--config-file {path!r}")
    if not isinstance(data, dict):
        raise ConfigurationError(f"--config-file {path!r} must hold a JSON object of configuration fields.")
    return data


def configuration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``create`` and ``update`` share."""
    for decorator in reversed(
        [
            click.option("--feature", "features", multiple=True,
                         help="Embedding column; repeat to cluster several features as one space."),
            click.option("--combine", type=click.Choice(["concatenate", "weighted", "independent"]),
                         help="How several features make one vector (each L2-normalised first)."),
            click.option("--weights", help="Comma-separated weight per feature, for --combine weighted."),
            click.option("--filter", "filter_", metavar="JSON|@FILE",
                         help="Cluster only the documents this filter keeps (AND/OR/NOT over metadata); null: all."),
            click.option("--algorithm"),
            click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                         help="Estimator parameter (repeatable)."),
            click.option("--pca", type=click.IntRange(min=0), help="Reduce to N dimensions by PCA first (0: none)."),
            click.option("--reduction", type=click.Choice(["auto", "umap", "pca", "none"]),
                         help="Reduction before the algorithm; auto: UMAP for hdbscan/dbscan/optics on >50 dimensions."),
            click.option("--max-clusters", type=click.IntRange(min=1), help="Merge the most similar clusters down to N."),
            click.option("--reassign-noise/--keep-noise", default=None,
                         help="Give each noise document its nearest cluster (or not)."),
            click.option("--normalize/--no-normalize", default=None, help="L2-normalise vectors (default: yes)."),
            click.option("--sample-size", type=click.IntRange(min=2),
                         help="Fit on a seeded sample of N documents, then assign every document."),
            click.option("--centroid-method", type=click.Choice(["mean", "median", "medoid"]),
                         help="Cluster centres for distances and labels."),
            click.option("--metric-sample-size", type=click.IntRange(min=100), help="Silhouette sample size."),
            click.option("--on-change/--no-on-change", default=None, help="Execute when the collection changes."),
            click.option("--schedule", help="Cron (5 fields), or 'nightly'; '' for none."),
            click.option("--description"),
            click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
                         help="Any configuration field by its dotted path, e.g. checks.min_silhouette=0.1 (repeatable)."),
            click.option("--config-file", type=click.Path(dir_okay=False), help="JSON file of configuration fields."),
        ]
    ):  # fmt: skip
        command = decorator(command)
    return command


def apply_options(data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a configuration as JSON) with the command-line options applied over it."""
    data = {**data, **(_read_config_file(options["config_file"]) if options["config_file"] else {})}
    features = list(options["features"])
    if len(features) == 1:
        data.update(feature=features[0], features=None)
    elif features:
        data.update(feature=features[0], features=features)
    if options["combine"]:
        data["combine"] = options["combine"]
    if options["weights"]:
        try:
            data["weights"] = [float(w) for w in options["weights"].split(",")]
        except ValueError:
            raise ConfigurationError(f"Bad --weights {options['weights']!r}: write numbers like 0.7,0.3.") from None
    if options["filter_"] is not None:
        data["filters"] = read_json_option(options["filter_"], "--filter")
    if options["algorithm"]:
        if data.get("algorithm") not in (None, options["algorithm"]):
            data["parameters"] = {}  # another algorithm's parameters mean nothing to this one
        data["algorithm"] = options["algorithm"]
    if options["params"]:
        data["parameters"] = {
            **data.get("parameters", {}),
            **dict(_pairs(options["params"], "--param", "n_clusters=8")),
        }
    if options["pca"] is not None:
        data["reduction"] = {"method": "pca", "n_components": options["pca"]} if options["pca"] else {"method": "none"}
    if options["reduction"]:
        data["reduction"] = {**data.get("reduction", {}), "method": options["reduction"]}
    for name in ("max_clusters", "sample_size", "centroid_method", "metric_sample_size", "description"):
        if options[name] is not None:
            data[name] = options[name]
    if options["reassign_noise"] is not None:
        data["reassign_noise"] = options["reassign_noise"]
    if options["normalize"] is not None:
        data["preprocessing"] = {**data.get("preprocessing", {}), "normalize": options["normalize"]}
    triggers = dict(data.get("triggers", {}))
    if options["on_change"] is not None:
        triggers["on_change"] = options["on_change"]
    if options["schedule"] is not None:
        triggers["schedule"] = options["schedule"] or None
    data["triggers"] = triggers
    for path, value in _pairs(options["settings"], "--set", "checks.min_silhouette=0.1"):
        _set_path(data, path, value)
    return data


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for name in parents:
        child = node.get(name)
        node[name] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[last] = value


def _check_against_collection(config: Any) -> None:
    from cluster_pipeline.core.pipeline.selection import check_against_collection
    from cluster_pipeline.core.store.collections import CollectionStore

    collections = CollectionStore(current_settings().lake())
    check_against_collection(collections, collections.snapshot(config.namespace, config.collection), config)


@cli.group(epilog=COMMON_OPTIONS_HELP)
@common_options
def clusters() -> None:
    """Cluster configurations: create, list, show, update, delete."""


@clusters.command("create", epilog=COMMON_OPTIONS_HELP)
@click.option("--collection")
@click.option("--name", help="Readable name, unique in the namespace (default: e.g. news-kmeans-k8).")
@configuration_options
@common_options
def clusters_create(collection: str | None, name: str | None, **options: Any) -> int:
    """Define a configuration (validated now: parameters, filter, cron, time zone, against the collection)."""
    from cluster_pipeline.core.config.model import parse_config
    from cluster_pipeline.core.config.store import ConfigStore
    from cluster_pipeline.runs import register_partition

    settings = current_settings()
    data = apply_options({}, options)
    data["namespace"] = settings.namespace
    if collection:
        data["collection"] = collection
    if name:
        data["name"] = name
    if "collection" not in data:
        raise ConfigurationError("A configuration needs a collection: pass --collection NAME.")
    config = parse_config(data)
    _check_against_collection(config)
    with dagster_instance() as instance:  # first: a deployment whose instance is unreachable gets no half-made config
        config = ConfigStore(settings.lake()).create(config)
        register_partition(instance, config)
    settings.emit(
        config.model_dump(mode="json"),
        f"Created {config.display_name} ({config.cluster_id}: {config.algorithm} on "
        f"{config.namespace}/{config.collection}). Execute it with: cluster-pipeline execute {config.display_name}",
    )
    return 0


@clusters.command("update", epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--unset-param", "unset", multiple=True, metavar="NAME", help="Remove a parameter (repeatable).")
@configuration_options
@common_options
def clusters_update(configuration_name: str, unset: tuple[str, ...], **options: Any) -> int:
    """Change a configuration (its name or clust_ id; not its collection or name). A change to what
    executions compute makes a new version; description, triggers and checks keep it. Refused while an
    execution is in flight."""
    from cluster_pipeline.core.config.revisions import revise
    from cluster_pipeline.core.config.store import ConfigStore
    from cluster_pipeline.runs import ensure_idle

    settings = current_settings()
    lake = settings.lake()
    current = configuration(lake, configuration_name)
    shown = current.display_name
    data = apply_options(current.model_dump(mode="json"), options)
    missing = [name for name in unset if name not in data.get("parameters", {})]
    if missing:
        raise ConfigurationError(f"--unset-param {missing[0]}: {shown} has no such parameter.")
    data["parameters"] = {k: v for k, v in data.get("parameters", {}).items() if k not in unset}
    with dagster_instance() as instance:
        ensure_idle(instance, lake, current, "update")
        revision = revise(current, data)
        _check_against_collection(revision.config)
        ConfigStore(lake).replace(revision.config)
    config = revision.config
    version = f"version {config.version}" if revision.new_version else f"still version {config.version}"
    settings.emit(
        {"configuration": config.model_dump(mode="json"), "changed": revision.changed,
         "new_version": revision.new_version},
        f"Updated {shown} ({version}; changed: {', '.join(revision.changed)}). "
        "Executions from now on run it; earlier results keep the configuration they ran with.",
    )  # fmt: skip
    return 0


@clusters.command("delete", epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--keep-history/--delete-history", default=True, show_default=True,
              help="Keep the configuration's ExecutionResults (readable with `executions`) or remove them.")  # fmt: skip
@common_options
def clusters_delete(configuration_name: str, keep_history: bool) -> int:
    """Delete a configuration (its name or clust_ id) and its Dagster partition (refused while an execution
    is in flight). Its name is free again; its kept history is read by its clust_ id."""
    from cluster_pipeline.core.config.store import ConfigStore
    from cluster_pipeline.core.store.results import ResultStore
    from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
    from cluster_pipeline.runs import ensure_idle

    settings = current_settings()
    lake = settings.lake()
    config = configuration(lake, configuration_name)
    cluster_id = config.cluster_id
    with dagster_instance() as instance:
        ensure_idle(instance, lake, config, "delete")
        ConfigStore(lake).delete(config)  # first: sensors and schedules stop seeing it
        if instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key):
            instance.delete_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key)
    results = ResultStore(lake)
    kept = len(results.result_keys(config.namespace, cluster_id)) if keep_history else 0
    removed = 0 if keep_history else results.delete_history(config.namespace, cluster_id)
    history = (
        f"its {kept} execution(s) stay readable with `cluster-pipeline executions list {cluster_id}`"
        if keep_history
        else f"its {removed} execution(s) were removed"
    )
    settings.emit(
        {"deleted": cluster_id, "history": "kept" if keep_history else "deleted", "executions": kept or removed},
        f"Deleted {config.display_name} ({cluster_id}); {history}.",
    )
    return 0


@clusters.command("list", epilog=COMMON_OPTIONS_HELP)
@common_options
def clusters_list() -> int:
    """List the namespace's configurations (unreadable files are skipped with a warning)."""
    from cluster_pipeline.core.config.store import ConfigStore

    settings = current_settings()
    configs, problems = ConfigStore(settings.lake()).scan(settings.namespace)
    for problem in problems:
        warn(problem)
    text = (
        "\n".join(
            f"{c.display_name:<32} {c.cluster_id}  v{c.version:<3} {c.algorithm:<16} {c.collection}  "
            f"{json.dumps(c.parameters)}"
            for c in configs
        )
        or f"No configurations in namespace {settings.namespace!r}."
    )
    settings.emit([c.model_dump(mode="json") for c in configs], text)
    return 0


@clusters.command("show", epilog=COMMON_OPTIONS_HELP)
@click.argument("configuration_name", metavar="CONFIGURATION")
@common_options
def clusters_show(configuration_name: str) -> int:
    """Show one configuration (by its name or clust_ id)."""
    settings = current_settings()
    config = configuration(settings.lake(), configuration_name)
    settings.emit(config.model_dump(mode="json"), config.model_dump_json(indent=2))
    return 0
