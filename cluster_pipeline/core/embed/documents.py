"""The embedding stage of an ingest: a batch's text columns become one embedding feature.

Runs before the batch is checked and published (``core.store``), so a failure anywhere writes nothing.
Several columns are joined per document, one per line, in the order given (``title,text``); a document
with no text in any of them is refused, since an empty text has no meaning to embed. Progress goes to
``core.progress`` (the CLI's bar) batch by batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.embed.embedders import Embedder
from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.ids import check_feature
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.store.collections import EmbeddingModel

STAGE = "embed"


def embed_documents(
    table: pa.Table, columns: Sequence[str], feature: str, embedder: Embedder, progress: Progress | None = None
) -> tuple[pa.Table, EmbeddingModel]:
    """``table`` with a ``fixed_size_list<float32>[D]`` column ``feature`` embedding its ``columns``' text,
    and the model that embedded it (its dimension known)."""
    if table.num_rows == 0:
        raise IngestError("No documents to ingest: the input is empty.")
    texts = document_texts(table, columns)
    if check_feature(feature) in table.column_names:
        raise IngestError(
            f"The documents already have a column {feature!r}: name the embedded feature with --feature, "
            "or drop --embed to ingest those vectors."
        )
    progress = progress or Progress.silent()
    batches = []
    for start in range(0, len(texts), embedder.batch_size):
        batches.append(embedder.embed(texts[start : start + embedder.batch_size]))
        progress.update(STAGE, start + len(batches[-1]), len(texts), unit="texts")
    vectors = np.vstack(batches)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    return table.append_column(pa.field(feature, column.type), column), embedder.model


def document_texts(table: pa.Table, columns: Sequence[str]) -> list[str]:
    """Each document's text: its ``columns``' values joined one per line, nulls and blanks skipped."""
    if not columns:
        raise IngestError("--embed needs the text columns to embed, e.g. --embed text or --embed title,text.")
    for name in columns:
        if name not in table.column_names:
            text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            raise IngestError(f"No column {name!r} to embed; the documents' text columns: {', '.join(text) or 'none'}.")
        if not (
            pa.types.is_string(table.schema.field(name).type) or pa.types.is_large_string(table.schema.field(name).type)
        ):
            raise IngestError(
                f"Column {name!r} holds {table.schema.field(name).type}, not text: name text columns to --embed."
            )
    values = [[(v or "").strip() for v in table.column(name).to_pylist()] for name in columns]
    texts = ["\n".join(v for v in row if v) for row in zip(*values, strict=True)]
    empty = [row for row, text in enumerate(texts) if not text]
    if empty:
        ids = pc.cast(table.column("document_id"), pa.string()) if "document_id" in table.column_names else None
        which = f"Document {ids[empty[0]].as_py()!r}" if ids is not None else f"Row {empty[0]}"
        raise IngestError(
            f"{which} has no text in {', '.join(columns)} ({len(empty)} documents have none); every document "
            "needs text to embed. Fill it in or drop those documents."
        )
    return texts
