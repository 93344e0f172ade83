"""Collections: append-only Parquet parts of documents with one or more embedding features.

An ingest validates the whole batch first (required columns, one dimension per feature, finite
values, unique ``document_id``) and only then publishes one new part atomically: a refused batch
writes nothing. Embeddings are stored as ``fixed_size_list<float32>[D]`` so they load into an
``(N, D)`` float32 matrix with no Python object per row.

A collection's *version* is the list of its parts. Part names carry their row counts
(``part-000003-1000-<token>.parquet``) so a sensor can tell how much changed from a listing alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cluster_pipeline.core.errors import (
    FeatureNotFoundError,
    IngestError,
    NotFoundError,
)
from cluster_pipeline.core.ids import check_collection, check_feature, check_namespace
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.storage import exclusive, read_parquet

PART_PATTERN = re.compile(r"part-(\d{6})-(\d+)-[0-9a-f]+\.parquet$")
DELETION_PATTERN = re.compile(r"del-(\d{6})-(\d+)-[0-9a-f]+\.parquet$")
READ_BATCH_ROWS = 65_536
STREAM_BATCH_ROWS = 16_384
STREAM_BUFFER_BYTES = 4 << 20


@dataclass(frozen=True)
class CollectionSchema:
    """What every part of a collection agrees on: its embedding features and their dimensions."""

    namespace: str
    collection: str
    features: dict[str, int]
    metadata_columns: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {"features": self.features, "metadata_columns": self.metadata_columns}, indent=2, sort_keys=True
        )


@dataclass(frozen=True)
class PartInfo:
    key: str
    sequence: int
    num_rows: int


@dataclass(frozen=True)
class CollectionSnapshot:
    """A frozen view of a collection: exactly these parts, whatever is appended later."""

    namespace: str
    collection: str
    parts: tuple[PartInfo, ...]
    features: dict[str, int]
    deletions: tuple[PartInfo, ...] = ()

    @property
    def num_documents(self) -> int:
        return sum(part.num_rows for part in self.parts) - sum(d.num_rows for d in self.deletions)

    @property
    def version(self) -> str:
        """Content address of the part and deletion lists: changes exactly when the collection changes."""
        keys = [p.key for p in self.parts] + [d.key for d in self.deletions]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        return f"v{len(keys)}-{digest[:12]}"

    def deletions_after(self, part: PartInfo) -> list[PartInfo]:
        """Deletions recorded after ``part`` was written: they apply to it (later re-ingests survive)."""
        return [d for d in self.deletions if d.sequence > part.sequence]

    @property
    def last_sequence(self) -> int:
        """The sequence number of the newest part or tombstone (0 for an empty collection)."""
        return max((p.sequence for p in (*self.parts, *self.deletions)), default=0)

    def up_to(self, sequence: int) -> CollectionSnapshot:
        """The collection as it was when its part or tombstone number ``sequence`` was the newest."""
        return replace(
            self,
            parts=tuple(p for p in self.parts if p.sequence <= sequence),
            deletions=tuple(d for d in self.deletions if d.sequence <= sequence),
        )

    def as_of(self, version: str) -> CollectionSnapshot | None:
        """The earlier snapshot whose ``version`` is ``version``, or None if it is not in this one's history.

        Parts and tombstones are only ever appended, so every earlier version is this snapshot cut
        at one sequence number: an execution's ``collection_version`` alone says which parts it saw.
        """
        sequences = sorted({p.sequence for p in (*self.parts, *self.deletions)}, reverse=True)
        for sequence in [*sequences, 0]:
            candidate = self.up_to(sequence)
            if candidate.version == version:
                return candidate
        return None


@dataclass(frozen=True)
class IngestReport:
    namespace: str
    collection: str
    part_key: str
    num_documents: int
    total_documents: int
    features: dict[str, int]


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
            name: pc.sum(pc.match_substring_regex(table.column(name), JSON_VECTOR_PATTERN)).as_py() or 0
            for name in candidates
        }
        worst = max(candidates, key=lambda name: matching[name])
        _parse_json_vectors(table.column(worst), worst)
    return vectors


def check_utf8(table: pa.Table, source: str) -> None:
    """Refuse text that is not UTF-8 (a Latin-1 CSV or JSON Lines file) before anything reads it as text."""
    for field_ in table.schema:
        column = table.column(field_.name)
        if pa.types.is_binary(field_.type) or pa.types.is_large_binary(field_.type):
            bad_row = next((row for row, value in enumerate(column.to_pylist()) if not _is_utf8(value)), 0)
        elif pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type):
            try:
                for chunk in column.chunks:
                    chunk.validate(full=True)
                continue
            except pa.ArrowInvalid:
                bytes_ = pc.cast(column, pa.large_binary()).to_pylist()
                bad_row = next((row for row, value in enumerate(bytes_) if not _is_utf8(value)), 0)
        else:
            continue
        raise IngestError(
            f"{source} is not UTF-8 text: column {field_.name!r}, row {bad_row} holds bytes that are not UTF-8. "
            f"Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`) and ingest it again."
        )


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
    path = Path(path)
    if not path.exists():
        raise IngestError(f"Input file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
            check_utf8(table, f"{str(path)!r}")
            return table
        if suffix in (".jsonl", ".ndjson", ".json"):
            import pyarrow.json as pajson

            table = pajson.read_json(path)
            check_utf8(table, f"{str(path)!r}")
            return table
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise IngestError(f"Could not read {str(path)!r} as {suffix[1:]}: {error}") from None
    raise IngestError(f"Unsupported input format {suffix!r}: use .parquet, .csv or .jsonl.")


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


class CollectionStore:
    """Ingest into, list and load collections of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.storage = lake.storage

    def list_collections(self, namespace: str) -> list[str]:
        prefix = self.lake.collections_prefix(namespace)
        return sorted({key[len(prefix) :].split("/", 1)[0] for key in self.storage.list_keys(prefix)})

    def schema(self, namespace: str, collection: str) -> CollectionSchema:
        key = self.lake.collection_schema_key(namespace, collection)
        if not self.storage.exists(key):
            raise NotFoundError(
                f"Collection {collection!r} not found in namespace {namespace!r}; "
                "ingest documents first with `cluster-pipeline ingest`."
            )
        data = json.loads(self.storage.read_bytes(key))
        return CollectionSchema(namespace, collection, dict(data["features"]), list(data["metadata_columns"]))

    def _listing(self, prefix: str, pattern: re.Pattern[str]) -> list[PartInfo]:
        infos = []
        for key in self.storage.list_keys(prefix):
            match = pattern.search(key)
            if match:
                infos.append(PartInfo(key, int(match.group(1)), int(match.group(2))))
        return sorted(infos, key=lambda part: part.sequence)

    def parts(self, namespace: str, collection: str) -> list[PartInfo]:
        return self._listing(self.lake.parts_prefix(namespace, collection), PART_PATTERN)

    def deletions(self, namespace: str, collection: str) -> list[PartInfo]:
        return self._listing(self.lake.collection_prefix(namespace, collection) + "deletions/", DELETION_PATTERN)

    def snapshot(self, namespace: str, collection: str) -> CollectionSnapshot:
        """The collection as it is now; reads only the schema and two listings, never the data."""
        schema = self.schema(namespace, collection)
        return CollectionSnapshot(
            namespace,
            collection,
            tuple(self.parts(namespace, collection)),
            schema.features,
            tuple(self.deletions(namespace, collection)),
        )

    def _next_sequence(self, namespace: str, collection: str) -> int:
        listed = self.parts(namespace, collection) + self.deletions(namespace, collection)
        return max((p.sequence for p in listed), default=0) + 1

    def _deleted_ids(self, snapshot: CollectionSnapshot, part: PartInfo) -> pa.Array | None:
        tombstones = snapshot.deletions_after(part)
        if not tombstones:
            return None
        tables = [read_parquet(self.storage, t.key, columns=["document_id"]) for t in tombstones]
        return pa.concat_tables(tables).column("document_id").combine_chunks()

    def delete_documents(self, namespace: str, collection: str, document_ids: Sequence[str]) -> int:
        """Remove documents by id (one atomic tombstone object); unknown ids refuse the whole request."""
        ids = list(dict.fromkeys(str(i) for i in document_ids))
        if not ids:
            raise IngestError("No document ids to delete.")
        with self._writer_lock(namespace, collection):
            live = set(self.load_documents(self.snapshot(namespace, collection), columns=[])["document_id"])
            unknown = [i for i in ids if i not in live]
            if unknown:
                raise IngestError(
                    f"Document {unknown[0]!r} is not in collection {collection!r} ({len(unknown)} unknown ids); "
                    "nothing was deleted."
                )
            sequence = self._next_sequence(namespace, collection)
            key = (
                self.lake.collection_prefix(namespace, collection)
                + f"deletions/del-{sequence:06d}-{len(ids)}-{secrets.token_hex(4)}.parquet"
            )
            self.storage.write_parquet_new(key, pa.table({"document_id": pa.array(ids, pa.string())}))
        return len(ids)

    @contextmanager
    def _writer_lock(self, namespace: str, collection: str) -> Iterator[None]:
        """Serialise ingests of one collection on a local lake (S3 relies on create-only part names)."""
        with exclusive(self.storage, self.lake.collection_prefix(namespace, collection) + ".lock"):
            yield

    def ingest(
        self,
        namespace: str,
        collection: str,
        documents: pa.Table | pd.DataFrame,
        features: Sequence[str] | None = None,
    ) -> IngestReport:
        """Validate ``documents`` and append them as one new part; on any error nothing is written.

        Parameters
        ----------
        documents : table with ``document_id``, optional ``text``/metadata and embedding columns.
        features : embedding column names; by default every column of numeric lists (or, in CSV, of JSON
            lists) is an embedding feature.
        """
        check_namespace(namespace)
        check_collection(collection)
        table = documents if isinstance(documents, pa.Table) else pa.Table.from_pandas(documents, preserve_index=False)
        if "document_id" not in table.column_names:
            raise IngestError("Missing column 'document_id': every document needs a unique id.")
        if table.num_rows == 0:
            raise IngestError("No documents to ingest: the input is empty.")
        with self._writer_lock(namespace, collection):
            try:
                existing: CollectionSchema | None = self.schema(namespace, collection)
            except NotFoundError:
                existing = None
            table = self._prepare(table, features, existing)
            self._check_new_ids(namespace, collection, table, existing)
            sequence = self._next_sequence(namespace, collection)
            key = (
                self.lake.parts_prefix(namespace, collection)
                + f"part-{sequence:06d}-{table.num_rows}-{secrets.token_hex(4)}.parquet"
            )
            feature_dims = {name: table.schema.field(name).type.list_size for name in self._feature_names(table)}
            if existing is None:
                metadata = [c for c in table.column_names if c != "document_id" and c not in feature_dims]
                schema = CollectionSchema(namespace, collection, feature_dims, metadata)
                self.storage.write_replace(
                    self.lake.collection_schema_key(namespace, collection), schema.to_json().encode()
                )
            self.storage.write_parquet_new(key, table, row_group_size=READ_BATCH_ROWS)
            total = self.snapshot(namespace, collection).num_documents
        return IngestReport(namespace, collection, key, table.num_rows, total, feature_dims)

    @staticmethod
    def _feature_names(table: pa.Table) -> list[str]:
        return [f.name for f in table.schema if pa.types.is_fixed_size_list(f.type) and f.name != "document_id"]

    def _prepare(self, table: pa.Table, features: Sequence[str] | None, existing: CollectionSchema | None) -> pa.Table:
        if features:
            names = [check_feature(name) for name in features]
        elif existing is not None:
            names = list(existing.features)
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
        if existing is not None:
            missing = [name for name in existing.features if name not in names]
            if missing:
                raise IngestError(f"Missing embedding column {missing[0]!r}: the collection's documents all carry it.")
        ids = pc.cast(table.column("document_id"), pa.string())
        if ids.null_count:
            raise IngestError("Column 'document_id' has empty values; every document needs an id.")
        counts = pc.value_counts(ids.combine_chunks())
        duplicated = [str(v["values"]) for v in counts.to_pylist() if v["counts"] > 1]
        if duplicated:
            raise IngestError(
                f"Duplicate document_id {duplicated[0]!r} in the input ({len(duplicated)} ids repeat); ids must be unique."
            )
        table = table.set_column(table.schema.get_field_index("document_id"), "document_id", ids)
        for name in names:
            column = table.column(name)
            if pa.types.is_string(column.type):
                column = pa.chunked_array([_parse_json_vectors(column, name)])
            elif not _is_vector_type(column.type):
                raise IngestError(f"Column {name!r} is not a list of numbers, so it cannot be an embedding.")
            expected = existing.features.get(name) if existing else None
            vectors = _to_fixed_size_float32(column, name, expected)
            table = table.set_column(table.schema.get_field_index(name), pa.field(name, vectors.type), vectors)
        return table

    def _check_new_ids(
        self, namespace: str, collection: str, table: pa.Table, existing: CollectionSchema | None
    ) -> None:
        if existing is None:
            return
        new_ids = table.column("document_id")
        live = self.load_documents(self.snapshot(namespace, collection), columns=[])["document_id"]
        if len(live):
            clash = pc.is_in(new_ids, value_set=pa.array(live.to_numpy(), pa.string()))
            if pc.any(clash).as_py():
                first = new_ids.filter(clash)[0].as_py()
                raise IngestError(
                    f"Duplicate document_id {first!r}: it is already in collection {collection!r}. "
                    "Use new ids for new documents."
                )

    def feature_dimension(self, snapshot: CollectionSnapshot, feature: str) -> int:
        """The dimension of ``feature``; FeatureNotFoundError (the seed's wording) if the collection has none."""
        if feature not in snapshot.features:
            available = ", ".join(sorted(snapshot.features)) or "none"
            raise FeatureNotFoundError(
                f"Feature extractor {feature!r} not found in collection {snapshot.collection!r} "
                f"(available: {available}); set the configuration's feature to one of them."
            )
        return snapshot.features[feature]

    def iter_embeddings(
        self, snapshot: CollectionSnapshot, feature: str, batch_rows: int = STREAM_BATCH_ROWS
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(offset, (rows, D) float32 batch)`` over the feature, part by part, in collection order.

        Pages are streamed through a small read buffer (no whole column chunk in memory), so the
        working memory is about one batch whatever the row-group size.
        """
        dim = self.feature_dimension(snapshot, feature)
        offset = 0
        for part in snapshot.parts:
            reader = pq.ParquetFile(
                self.storage.parquet_stream(part.key), pre_buffer=False, buffer_size=STREAM_BUFFER_BYTES
            )
            deleted = self._deleted_ids(snapshot, part)
            columns = [feature] if deleted is None else [feature, "document_id"]
            for batch in reader.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
                if deleted is not None:
                    batch = batch.filter(pc.invert(pc.is_in(batch.column(1), value_set=deleted)))
                values = batch.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
                yield offset, values
                offset += len(values)
        if offset != snapshot.num_documents:
            raise NotFoundError(f"Collection {snapshot.collection!r} changed while loading; run again.")

    def load_embeddings(
        self,
        snapshot: CollectionSnapshot,
        feature: str,
        progress: Progress | None = None,
        *,
        rows: np.ndarray | None = None,
        out: np.ndarray | None = None,
        stage: str = "load",
        batch_rows: int = STREAM_BATCH_ROWS,
    ) -> np.ndarray:
        """The feature as one C-contiguous ``(N, D)`` float32 matrix, filled batch by batch.

        Peak memory is the matrix plus one streamed batch: no per-row Python objects, no pandas,
        no second copy (a whole ``read_table`` plus concatenation holds the matrix three times).

        ``rows``: only these sorted matrix positions (a filter's documents, a sample), in order.
        ``out``: fill this ``(len(rows), D)`` array (or view: a column block of a wider matrix) instead
        of a new one. ``stage`` names the progress stage; ``batch_rows`` the rows read at a time.
        """
        dim = self.feature_dimension(snapshot, feature)
        progress = progress or Progress.silent()
        total = snapshot.num_documents
        size = total if rows is None else len(rows)
        matrix = np.empty((size, dim), dtype=np.float32) if out is None else out
        progress.update(stage, 0, total)
        filled = 0
        for offset, values in self.iter_embeddings(snapshot, feature, batch_rows):
            if rows is None:
                matrix[offset : offset + len(values)] = values
            else:
                lo, hi = np.searchsorted(rows, [offset, offset + len(values)])
                matrix[filled : filled + hi - lo] = values[rows[lo:hi] - offset]
                filled += hi - lo
            progress.update(stage, offset + len(values), total)
        return matrix

    def load_documents(self, snapshot: CollectionSnapshot, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """``document_id`` and metadata columns (no embeddings), in the same row order as the matrix."""
        schema = self.schema(snapshot.namespace, snapshot.collection)
        requested = schema.metadata_columns if columns is None else columns
        wanted = ["document_id"] + [c for c in requested if c in schema.metadata_columns]
        frames = []
        for part in snapshot.parts:
            reader = pq.ParquetFile(self.storage.parquet_stream(part.key))
            present = [c for c in wanted if c in reader.schema_arrow.names]
            table = reader.read(columns=present, use_threads=False)  # see storage.read_parquet
            deleted = self._deleted_ids(snapshot, part)
            if deleted is not None:
                table = table.filter(pc.invert(pc.is_in(table.column("document_id"), value_set=deleted)))
            frames.append(table.to_pandas())
        if not frames:
            return pd.DataFrame({"document_id": pd.Series([], dtype=str)})
        return pd.concat(frames, ignore_index=True)

    def _live_part(self, snapshot: CollectionSnapshot, part: PartInfo, columns: Sequence[str]) -> pa.Table:
        """One part's ``columns`` without the documents deleted after it was written."""
        reader = pq.ParquetFile(self.storage.parquet_stream(part.key))  # see storage.read_parquet
        table = reader.read(columns=list(columns), use_threads=False)
        deleted = self._deleted_ids(snapshot, part)
        if deleted is not None:
            table = table.filter(pc.invert(pc.is_in(table.column("document_id"), value_set=deleted)))
        return table

    def load_parts_after(
        self, snapshot: CollectionSnapshot, sequence: int, feature: str
    ) -> tuple[pa.ChunkedArray, np.ndarray]:
        """``document_id`` and the ``(n, D)`` float32 embeddings of the live documents in parts written
        after ``sequence`` (what was added since a snapshot that ended there), in collection order."""
        dim = self.feature_dimension(snapshot, feature)
        tables = [
            self._live_part(snapshot, p, ["document_id", feature]) for p in snapshot.parts if p.sequence > sequence
        ]
        if not tables:
            return pa.chunked_array([], pa.string()), np.empty((0, dim), dtype=np.float32)
        table = pa.concat_tables(tables)
        vectors = table.column(feature).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        ids = pa.chunked_array(table.column("document_id").chunks, pa.string())
        return ids, np.ascontiguousarray(vectors.reshape(-1, dim), dtype=np.float32)

    def documents_table(self, snapshot: CollectionSnapshot, *, embeddings: bool = False) -> pa.Table:
        """Every live document as one Arrow table: ``document_id``, metadata and (if asked) embedding
        columns; parts written before a metadata column existed have nulls in it."""
        schema = self.schema(snapshot.namespace, snapshot.collection)
        wanted = ["document_id", *schema.metadata_columns, *(snapshot.features if embeddings else [])]
        tables = []
        for part in snapshot.parts:
            names = pq.ParquetFile(self.storage.parquet_source(part.key)).schema_arrow.names
            tables.append(self._live_part(snapshot, part, [c for c in wanted if c in names]))
        if not tables:
            return pa.table({"document_id": pa.array([], pa.string())})
        return pa.concat_tables(tables, promote_options="default").select(
            [c for c in wanted if c in {n for t in tables for n in t.column_names}]
        )

    def metadata_schema(self, snapshot: CollectionSnapshot) -> pa.Schema:
        """Arrow types of ``document_id`` and the metadata columns (no embeddings), as the parts store
        them (a column first seen in a later part takes that part's type)."""
        wanted = ["document_id", *self.schema(snapshot.namespace, snapshot.collection).metadata_columns]
        fields: dict[str, pa.Field] = {}
        for part in snapshot.parts:
            stored = pq.ParquetFile(self.storage.parquet_source(part.key)).schema_arrow
            fields.update({name: stored.field(name) for name in wanted if name in stored.names and name not in fields})
        return pa.schema([fields[name] for name in wanted if name in fields])

    def read_columns(
        self, snapshot: CollectionSnapshot, columns: Sequence[str], rows: np.ndarray | None = None
    ) -> pa.Table:
        """Metadata ``columns`` of the live documents in matrix order (all of them, or the sorted matrix
        positions ``rows``), one part at a time; a column a part lacks reads as nulls there."""
        schema = self.metadata_schema(snapshot)
        target = pa.schema([schema.field(name) for name in columns])
        tables, start = [], 0
        for part in snapshot.parts:
            stored = pq.ParquetFile(self.storage.parquet_source(part.key)).schema_arrow.names
            present = [name for name in dict.fromkeys(["document_id", *columns]) if name in stored]
            table = self._live_part(snapshot, part, present)
            size = table.num_rows
            if rows is not None:
                lo, hi = np.searchsorted(rows, [start, start + size])
                table = table.take(pa.array(rows[lo:hi] - start))
            start += size
            arrays = [
                table.column(f.name).cast(f.type) if f.name in present else pa.nulls(table.num_rows, f.type)
                for f in target
            ]
            tables.append(pa.Table.from_arrays(arrays, schema=target))
        return pa.concat_tables(tables) if tables else target.empty_table()

    def load_document_ids(self, snapshot: CollectionSnapshot) -> pa.ChunkedArray:
        """``document_id`` as an Arrow string column in matrix order (compact: no Python object per row)."""
        chunks = [self._live_part(snapshot, part, ["document_id"]).column(0) for part in snapshot.parts]
        return pa.chunked_array([c for chunked in chunks for c in chunked.chunks], type=pa.string())

    def take_documents(self, snapshot: CollectionSnapshot, rows: np.ndarray) -> pd.DataFrame:
        """``load_documents`` for the sorted ``rows`` (matrix positions) only, reading one part at a time."""
        schema = self.schema(snapshot.namespace, snapshot.collection)
        wanted = ["document_id", *schema.metadata_columns]
        frames, start = [], 0
        for part in snapshot.parts:
            names = pq.ParquetFile(self.storage.parquet_stream(part.key)).schema_arrow.names
            table = self._live_part(snapshot, part, [c for c in wanted if c in names])
            lo, hi = np.searchsorted(rows, [start, start + table.num_rows])
            if hi > lo:
                frames.append(table.take(pa.array(rows[lo:hi] - start)).to_pandas())
            start += table.num_rows
        if not frames:
            return pd.DataFrame({"document_id": pd.Series([], dtype=str)})
        return pd.concat(frames, ignore_index=True)
