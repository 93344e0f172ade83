"""Ingest's side of a collection: reading a documents file and checking a batch before it is published.

A batch is checked whole — unique ids, the embedding columns (vector columns, or in CSV text columns
holding a JSON vector in every row), one dimension per feature and the collection's, finite values —
and its embeddings become ``fixed_size_list<float32>[D]``, so they load into an ``(N, D)`` float32
matrix with no Python object per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.ids import check_feature

if TYPE_CHECKING:
    import pandas as pd

# pyarrow reads CSV and JSON Lines in blocks that must each hold whole documents
FIRST_BLOCK_BYTES = 1 << 20
MAX_DOCUMENT_MB = 128  # one line or row: a field of 64 MB fits with room for the rest of the document
TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _is_vector_type(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)
    ) and (pa.types.is_floating(arrow_type.value_type) or pa.types.is_integer(arrow_type.value_type))


def _parse_json_vectors(column: pa.ChunkedArray, name: str) -> pa.Array:
    """CSV files carry vectors as JSON text like ``[0.1, 0.2]``; decode them into a list column."""
    values = []
    for row, text in enumerate(column.to_pylist()):
        try:
            value = None if text is None else json.loads(text)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            ):
                raise ValueError("not a list of numbers")
        except ValueError as error:
            raise IngestError(
                f"Column {name!r} is taken for an embedding, but row {row} is not a JSON list of numbers ({error}). "
                f"Write vectors as '[0.1, 0.2, ...]'; if {name!r} is not an embedding, name the embedding "
                "column(s) with --feature."
            ) from None
        values.append(value)
    return pa.array(values, type=pa.list_(pa.float64()))


_NUMBER = r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*"
JSON_VECTOR_PATTERN = rf"^\s*\[({_NUMBER}(,{_NUMBER})*)?\]\s*$"


def _every_row_matches(column: pa.ChunkedArray, pattern: str) -> bool:
    if column.null_count == len(column):
        return False
    return bool(pc.all(pc.fill_null(pc.match_substring_regex(column, pattern), True)).as_py())


def _json_vector_columns(table: pa.Table) -> list[str]:
    """Text columns holding a JSON vector in every row (CSV) — every row, not just the first, so a title
    like '[Update] …' in row 0 makes no embedding. A column that starts every row with '[' but is not
    all numbers is refused with the row at fault, unless another column qualifies."""
    candidates = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        and f.name != "document_id"
        and _every_row_matches(table.column(f.name), r"^\s*\[")
    ]
    vectors = [name for name in candidates if _every_row_matches(table.column(name), JSON_VECTOR_PATTERN)]
    if candidates and not vectors:  # the most vector-like column names the row at fault
        matching = {
            name: pc.sum(pc.match_substring_regex(table[name], JSON_VECTOR_PATTERN)).as_py() for name in candidates
        }
        closest = max(candidates, key=lambda name: matching[name] or 0)
        _parse_json_vectors(table.column(closest), closest)
    return vectors


def check_utf8(table: pa.Table, source: str) -> None:
    """Refuse text that is not UTF-8 (a Latin-1 or UTF-16 CSV or JSON Lines file) before anything reads it
    as text: the column names (a header), then the values."""
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise IngestError(
            f"{source} is not UTF-8 text: its column names hold bytes that are not UTF-8. Convert the file to UTF-8 "
            "(e.g. `iconv -f utf-16 -t utf-8 in.csv > out.csv`) and ingest it again."
        ) from None
    for index, field_ in enumerate(table.schema):
        if not any(is_text(field_.type) for is_text in TEXT_TYPES):
            continue
        values = pc.cast(table.column(index), pa.large_binary())
        try:
            pc.cast(values, pa.large_string())  # the cast checks every value is UTF-8
        except pa.ArrowInvalid:
            bad_row = next((row for row, value in enumerate(values.to_pylist()) if not _is_utf8(value)), 0)
            raise IngestError(
                f"{source} is not UTF-8 text: column {names[index]!r}, row {bad_row} holds bytes that are not UTF-8. "
                f"Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`) and ingest it again."
            ) from None


def _is_utf8(value: bytes | None) -> bool:
    if value is None:
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_documents_file(path: str | Path) -> pa.Table:
    """Read documents from Parquet, CSV or JSON Lines (chosen by file extension)."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson

    path = Path(path)
    if not path.exists():
        raise IngestError(f"Input file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    readers = {
        ".parquet": pq.read_table,
        ".pq": pq.read_table,
        ".csv": partial(_read_text, pacsv.read_csv, pacsv.ReadOptions),
    }
    readers.update(
        dict.fromkeys((".jsonl", ".ndjson", ".json"), partial(_read_text, pajson.read_json, pajson.ReadOptions))
    )
    if suffix not in readers:
        raise IngestError(f"Unsupported input format {suffix!r}: use .parquet, .csv or .jsonl.")
    try:
        table = readers[suffix](path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise IngestError(f"Could not read {str(path)!r} as {suffix[1:]}: {error}") from None
    if readers[suffix] is not pq.read_table:  # Parquet's strings are UTF-8 by definition
        check_utf8(table, f"{str(path)!r}")
    return table


def _read_text(read: Callable[..., pa.Table], options: Callable[..., Any], path: Path) -> pa.Table:
    """A CSV or JSON Lines file read by pyarrow (``read`` with its ``options``), whose block (1 MB by
    default) must hold a whole document: it grows fourfold up to ``MAX_DOCUMENT_MB`` while one does not fit."""
    block = FIRST_BLOCK_BYTES
    while True:
        try:
            return read(path, read_options=options(block_size=block))
        except pa.ArrowInvalid as error:
            if "straddl" not in str(error):
                raise
        if block >= MAX_DOCUMENT_MB << 20:
            raise IngestError(
                f"A document in {str(path)!r} is larger than {MAX_DOCUMENT_MB} MB (one line of JSON Lines, one row "
                "of CSV): shorten its text, or ingest the documents from Parquet, which has no such limit."
            )
        block = min(block * 4, MAX_DOCUMENT_MB << 20)


def _to_fixed_size_float32(column: pa.ChunkedArray, name: str, expected_dim: int | None) -> pa.FixedSizeListArray:
    array = column.combine_chunks()
    if array.null_count:
        row = int(np.flatnonzero(np.asarray(array.is_null()))[0])
        raise IngestError(f"Embedding {name!r} is missing in row {row}; every document needs a vector.")
    if pa.types.is_fixed_size_list(array.type):
        dim = array.type.list_size
    else:
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if len(lengths) else (expected_dim or 0)
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            raise IngestError(
                f"Embedding {name!r} has mixed dimensions: row {int(bad[0])} has {int(lengths[bad[0]])} values, "
                f"row 0 has {dim}. Every vector of a feature must have the same length."
            )
    if expected_dim is not None and dim != expected_dim:
        raise IngestError(
            f"Embedding {name!r} has dimension {dim}, but the collection stores {expected_dim}-dimensional "
            f"vectors for it. Re-embed with the same model or ingest into a new collection."
        )
    if dim == 0:
        raise IngestError(f"Embedding {name!r} has no values.")
    values = pc.cast(array.flatten(), pa.float32())
    matrix = values.to_numpy(zero_copy_only=False)
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix.reshape(-1, dim)).all(axis=1))[0])
        raise IngestError(f"Embedding {name!r} holds NaN or infinite values (first in row {row}); fix or drop it.")
    return pa.FixedSizeListArray.from_arrays(values, dim)


def prepare_documents(
    documents: pa.Table | pd.DataFrame, features: Sequence[str] | None, existing: Mapping[str, int] | None
) -> tuple[pa.Table, dict[str, int]]:
    """The batch as it is stored, and its features' dimensions; IngestError names the first problem.
    ``features``: the embedding columns (default: the collection's, ``existing`` — None for a new
    collection —, or those detected)."""
    table = documents if isinstance(documents, pa.Table) else pa.Table.from_pandas(documents, preserve_index=False)
    if "document_id" not in table.column_names:
        raise IngestError("Missing column 'document_id': every document needs a unique id.")
    if table.num_rows == 0:
        raise IngestError("No documents to ingest: the input is empty.")
    names = _embedding_columns(table, features, existing)
    table = table.set_column(table.schema.get_field_index("document_id"), "document_id", _checked_ids(table))
    for name in names:
        column = table.column(name)
        if pa.types.is_string(column.type):
            column = pa.chunked_array([_parse_json_vectors(column, name)])
        elif not _is_vector_type(column.type):
            raise IngestError(f"Column {name!r} is not a list of numbers, so it cannot be an embedding.")
        vectors = _to_fixed_size_float32(column, name, existing.get(name) if existing else None)
        table = table.set_column(table.schema.get_field_index(name), pa.field(name, vectors.type), vectors)
    dims = {
        f.name: f.type.list_size
        for f in table.schema
        if pa.types.is_fixed_size_list(f.type) and f.name != "document_id"
    }
    return table, dims


def _embedding_columns(
    table: pa.Table, features: Sequence[str] | None, existing: Mapping[str, int] | None
) -> list[str]:
    if features:
        names = [check_feature(name) for name in features]
    elif existing is not None:
        names = list(existing)
    else:
        # Real vector columns when there are any (Parquet, JSON Lines); else text columns that hold
        # JSON vectors in every row (CSV).
        names = [f.name for f in table.schema if _is_vector_type(f.type)] or _json_vector_columns(table)
    if not names:
        raise IngestError(
            "No embedding column found: add a column of float vectors (e.g. 'embedding') or name it with --feature."
        )
    for name in names:
        check_feature(name)
        if name not in table.column_names:
            raise IngestError(f"Missing embedding column {name!r}: the collection's documents all carry it.")
    missing = [name for name in existing or {} if name not in names]
    if missing:
        raise IngestError(f"Missing embedding column {missing[0]!r}: the collection's documents all carry it.")
    return names


def _checked_ids(table: pa.Table) -> pa.ChunkedArray:
    """``document_id`` as strings, refused when one is missing (null or ``""``) or repeated."""
    try:
        ids = pc.cast(table.column("document_id"), pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise IngestError(
            f"Column 'document_id' holds {table.schema.field('document_id').type} values; a document_id must be "
            "text or a whole number."
        ) from None
    missing = pc.fill_null(pc.equal(ids, ""), True)
    if pc.any(missing).as_py():
        row = int(np.flatnonzero(np.asarray(missing.combine_chunks()))[0])
        raise IngestError(f"Column 'document_id' has empty values (first in row {row}); every document needs an id.")
    counts = pc.value_counts(ids.combine_chunks())
    duplicated = [str(v["values"]) for v in counts.to_pylist() if v["counts"] > 1]
    if duplicated:
        raise IngestError(
            f"Duplicate document_id {duplicated[0]!r} in the input ({len(duplicated)} ids repeat); ids must be unique."
        )
    return ids
