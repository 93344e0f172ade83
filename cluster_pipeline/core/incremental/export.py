"""``collections export``: a collection's live documents as one Parquet, CSV or JSON Lines file,
optionally joined with a configuration's enrichment (each document's latest cluster).

DuckDB does the join and writes every format (lists such as embeddings become JSON-like
``[0.1, 0.2]`` text in CSV, which ``ingest`` reads back). The file is written beside its target
under a temporary name and renamed into place, so a reader never sees half an export.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.incremental.enrichment import read_enrichment
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DUCKDB_FORMATS = {
    "parquet": "(FORMAT parquet, COMPRESSION zstd)",
    "csv": "(FORMAT csv, HEADER)",
    "jsonl": "(FORMAT json)",
}


@dataclass(frozen=True)
class ExportReport:
    path: str
    format: str
    documents: int
    with_clusters: int  # documents that have a cluster in the enrichment (0 without --with-clusters)


def export_collection(
    lake: Lake,
    namespace: str,
    collection: str,
    path: str | Path,
    *,
    fmt: str | None = None,
    cluster_id: str | None = None,
    embeddings: bool = False,
) -> ExportReport:
    """Write ``collection``'s live documents to ``path``; with ``cluster_id``, each with its latest
    cluster of that configuration (``cluster_id``, ``cluster_label``, ``distance``, ``novelty``, …;
    null for a document not clustered yet). An enrichment column whose name a document column uses
    already is written as ``cluster_<name>``."""
    import duckdb

    fmt = fmt or FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigurationError(
            f"Cannot tell the export format from {str(path)!r}: name a .parquet, .csv or .jsonl file, or pass --format."
        )
    store = CollectionStore(lake)
    snapshot = store.snapshot(namespace, collection)
    scanner = store.scan(snapshot)
    columns = ["document_id", *scanner.metadata_columns, *(snapshot.features if embeddings else [])]
    documents = scanner.table(columns)
    documents = documents.append_column("__row", pa.array(range(documents.num_rows), pa.int64()))
    with duckdb.connect() as connection:
        connection.register("documents", documents)
        select, join, clustered = "d.* EXCLUDE (__row)", "", 0
        if cluster_id is not None:
            enrichment = read_enrichment(lake, namespace, cluster_id)
            connection.register("enrichment", enrichment)
            taken = set(documents.column_names)
            select += "".join(
                f', e."{name}" AS "{name if name not in taken else "cluster_" + name}"'
                for name in enrichment.column_names
                if name != "document_id"
            )
            join = " LEFT JOIN enrichment e USING (document_id)"
            counted = connection.execute("SELECT count(*) FROM documents d JOIN enrichment e USING (document_id)")
            clustered = int(counted.fetchall()[0][0])
        query = f"SELECT {select} FROM documents d{join} ORDER BY d.__row"
        target = Path(path).expanduser().resolve()
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            quoted = temporary.replace("'", "''")
            connection.execute(f"COPY ({query}) TO '{quoted}' {DUCKDB_FORMATS[fmt]}")
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return ExportReport(str(target), fmt, documents.num_rows, clustered)
