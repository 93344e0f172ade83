"""The ``collections`` group: ``export`` a collection's documents, with their clusters if asked."""

from __future__ import annotations

import click

from cluster_pipeline.cli.app import COMMON_OPTIONS_HELP, cli, common_options, current_service, current_settings


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
    settings = current_settings()
    report = current_service().collections.export(
        collection, output, fmt=fmt, configuration=cluster_id, embeddings=embeddings
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
