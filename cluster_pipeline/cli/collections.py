"""Commands on documents and collections: ``ingest``, ``delete`` and the ``collections`` group (``export``
a collection's documents, with their clusters if asked)."""

import sys
from dataclasses import asdict
from pathlib import Path

import click

from cluster_pipeline.cli.app import cli, current_service, current_settings
from cluster_pipeline.cli.progress import showing_progress


@cli.command()
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--feature", "features", multiple=True, help="Embedding column (repeatable; default: auto-detect).")
@click.option(
    "--embed",
    metavar="COLUMNS",
    help="Embed these text columns (comma-separated, e.g. title,text) into the feature instead of reading vectors; "
    "the model: $CLUSTER_PIPELINE_EMBEDDING_MODEL (default: the local all-MiniLM-L6-v2, the [embed] extra).",
)
def ingest(collection: str, file: str, features: tuple[str, ...], embed: str | None) -> None:
    """Append documents from FILE (Parquet, CSV, JSON Lines) to COLLECTION."""
    columns = [name.strip() for name in (embed or "").split(",") if name.strip()]
    with showing_progress(bool(columns) and sys.stderr.isatty() and not current_settings().json):
        report = current_service().collections.ingest(collection, file, features, embed=columns)
    data = {
        "namespace": report.namespace,
        "collection": report.collection,
        "ingested": report.num_documents,
        "total_documents": report.total_documents,
        "features": report.features,
        "part": report.part_key,
    }
    current_settings().emit(
        data,
        f"Ingested {report.num_documents} documents into {report.namespace}/{report.collection} "
        f"({report.total_documents} in total; features {report.features}).",
    )


@cli.command()
@click.argument("collection")
@click.argument("document_ids", nargs=-1)
@click.option("--ids-file", type=click.Path(dir_okay=False), help="File with one document id per line.")
def delete(collection: str, document_ids: tuple[str, ...], ids_file: str | None) -> None:
    """Remove documents from COLLECTION by id (one atomic tombstone)."""
    settings = current_settings()
    ids = list(document_ids)
    if ids_file:
        ids += [line.strip() for line in Path(ids_file).read_text().splitlines() if line.strip()]
    removed = current_service().collections.delete_documents(collection, ids)
    settings.emit({"deleted": removed}, f"Deleted {removed} documents from {settings.namespace}/{collection}.")


@cli.group()
def collections() -> None:
    """Collections of documents: export (ingest and delete are top-level commands)."""


@collections.command("export")
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
def collections_export(collection: str, output: str, fmt: str | None, cluster_id: str | None, embeddings: bool) -> None:
    """Write COLLECTION's documents to a Parquet, CSV or JSON Lines file (atomically)."""
    settings = current_settings()
    report = current_service().collections.export(
        collection, output, fmt=fmt, configuration=cluster_id, embeddings=embeddings
    )
    clusters = f", {report.with_clusters} with a cluster of {cluster_id}" if cluster_id else ""
    settings.emit(
        asdict(report),
        f"Exported {report.documents} documents of {settings.namespace}/{collection}{clusters} to {report.path}.",
    )
