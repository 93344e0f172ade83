"""Commands on documents: ``ingest`` and ``delete`` (configurations are ``cli.clusters``)."""

from __future__ import annotations

from pathlib import Path

import click

from cluster_pipeline.cli.app import COMMON_OPTIONS_HELP, cli, common_options, current_service, current_settings


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--feature", "features", multiple=True, help="Embedding column (repeatable; default: auto-detect).")
@common_options
def ingest(collection: str, file: str, features: tuple[str, ...]) -> int:
    """Append documents from FILE (Parquet, CSV, JSON Lines) to COLLECTION."""
    report = current_service().collections.ingest(collection, file, features)
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
    return 0


@cli.command(epilog=COMMON_OPTIONS_HELP)
@click.argument("collection")
@click.argument("document_ids", nargs=-1)
@click.option("--ids-file", type=click.Path(dir_okay=False), help="File with one document id per line.")
@common_options
def delete(collection: str, document_ids: tuple[str, ...], ids_file: str | None) -> int:
    """Remove documents from COLLECTION by id (one atomic tombstone)."""
    settings = current_settings()
    ids = list(document_ids)
    if ids_file:
        ids += [line.strip() for line in Path(ids_file).read_text().splitlines() if line.strip()]
    removed = current_service().collections.delete_documents(collection, ids)
    settings.emit({"deleted": removed}, f"Deleted {removed} documents from {settings.namespace}/{collection}.")
    return 0
