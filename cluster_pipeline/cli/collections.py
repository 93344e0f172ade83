"""The ``collections`` group: ``export`` a collection's documents, with their clusters if asked."""

from __future__ import annotations

import click

from cluster_pipeline.cli.app import COMMON_OPTIONS_HELP, cli, common_options, configuration, current_settings


@cli.group(epilog=COMMON_OPTIONS_HELP)
@common_options
def collections() -> None:
    """Collections of documents."""


@collections.command("export", epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), help="Default: from --output's extension."
)
@click.option(
    "--with-clusters",
    "cluster_id",
    metavar="CLUSTER_ID",
    help="Add each document's latest cluster of this configuration (cluster_id, cluster_label, distance, novelty).",
)
@click.option("--embeddings", is_flag=True, help="Include the embedding columns.")
@common_options
def collections_export(collection: str, output: str, fmt: str | None, cluster_id: str | None, embeddings: bool) -> int:
    """Write COLLECTION's documents to a Parquet, CSV or JSON Lines file (atomically)."""
    from cluster_pipeline.core.incremental.export import export_collection

    settings = current_settings()
    lake = settings.lake()
    if cluster_id is not None:
        config = configuration(lake, cluster_id)
        if config.collection != collection:
            raise click.BadParameter(
                f"{cluster_id} clusters collection {config.collection!r}, not {collection!r}.",
                param_hint="--with-clusters",
            )
    report = export_collection(
        lake, settings.namespace, collection, output, fmt=fmt, cluster_id=cluster_id, embeddings=embeddings
    )
    clusters = f", {report.with_clusters} with a cluster of {cluster_id}" if cluster_id else ""
    settings.emit(
        {
            "path": report.path,
            "format": report.format,
            "documents": report.documents,
            "with_clusters": report.with_clusters,
        },
        f"Exported {report.documents} documents of {settings.namespace}/{collection}{clusters} to {report.path}.",
    )
    return 0
