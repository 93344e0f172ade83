"""Commands on data: ``ingest``, ``delete`` and the ``clusters`` group (configurations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cluster_pipeline.cli.app import (
    COMMON_OPTIONS_HELP,
    cli,
    common_options,
    configuration,
    current_settings,
    dagster_instance,
    warn,
)
from cluster_pipeline.core.errors import ConfigurationError


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


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--feature", "features", multiple=True, help="Embedding column (repeatable; default: auto-detect).")
@common_options
def ingest(collection: str, file: str, features: tuple[str, ...]) -> int:
    """Append documents from FILE (Parquet, CSV, JSON Lines) to COLLECTION."""
    from cluster_pipeline.core.collections import CollectionStore, read_documents_file

    settings = current_settings()
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

    settings = current_settings()
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
@click.option("--name", help="Readable name, unique in the namespace (default: e.g. news-kmeans-k8).")
@click.option("--feature")
@click.option("--algorithm")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Estimator parameter (repeatable).")
@click.option("--pca", type=click.IntRange(min=0), help="Reduce to N dimensions by PCA first (0: no reduction).")
@click.option(
    "--reduction",
    type=click.Choice(["auto", "umap", "pca", "none"]),
    help="Reduction before the algorithm; auto: UMAP for hdbscan/dbscan/optics on >50 dimensions.",
)
@click.option("--max-clusters", type=click.IntRange(min=1), help="Merge the most similar clusters down to N.")
@click.option("--reassign-noise", is_flag=True, help="Give each noise document its nearest cluster.")
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

    settings = current_settings()
    data: dict[str, Any] = _read_config_file(options["config_file"]) if options["config_file"] else {}
    data["namespace"] = settings.namespace
    data.update(
        {name: options[name] for name in ("collection", "name", "feature", "algorithm", "description") if options[name]}
    )
    if options["params"]:
        data["parameters"] = {**data.get("parameters", {}), **_parameters(options["params"])}
    preprocessing = data.setdefault("preprocessing", {})
    if options["pca"] is not None:
        data["reduction"] = {"method": "pca", "n_components": options["pca"]} if options["pca"] else {"method": "none"}
    if options["reduction"]:
        data["reduction"] = {**data.get("reduction", {}), "method": options["reduction"]}
    if options["max_clusters"]:
        data["max_clusters"] = options["max_clusters"]
    if options["reassign_noise"]:
        data["reassign_noise"] = True
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
    with dagster_instance() as instance:  # first: a deployment whose instance is unreachable gets no half-made config
        config = ConfigStore(lake).create(config)
        register_partition(instance, config)
    settings.emit(
        config.model_dump(mode="json"),
        f"Created {config.display_name} ({config.cluster_id}: {config.algorithm} on "
        f"{config.namespace}/{config.collection}). Execute it with: cluster-pipeline execute {config.display_name}",
    )
    return 0


@clusters.command("list", epilog=COMMON_OPTIONS_HELP)
@common_options
def clusters_list() -> int:
    """List the namespace's configurations (unreadable files are skipped with a warning)."""
    from cluster_pipeline.core.config import ConfigStore

    settings = current_settings()
    configs, problems = ConfigStore(settings.lake()).scan(settings.namespace)
    for problem in problems:
        warn(problem)
    text = (
        "\n".join(
            f"{c.display_name:<32} {c.cluster_id}  {c.algorithm:<16} {c.collection}  {json.dumps(c.parameters)}"
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
