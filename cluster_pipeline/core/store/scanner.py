"""The one reader of a collection's documents: a scan over one snapshot's parts.

It reads only the columns asked for, drops the documents deleted after a part was written (each
tombstone read once per scan), numbers the live documents in collection order — a document's *row*
is its position in the ``(N, D)`` matrix — and keeps the rows asked for. A column some part lacks
reads as nulls of the collection's type.

Vectors take the lean path (PERF_NOTES). A part's Arrow IPC vectors file is mapped (on S3: read a
record batch at a time by byte range), each batch viewed with ``.flatten().to_numpy()`` — a view of
the page cache, no decoding, no copy — and its pages let go once the batch is consumed, so a pass
over a collection larger than memory holds one batch. A part written before the vectors moved out of
its Parquet streams them from there in batches through a small read buffer. ``matrix`` copies the
views once, into one preallocated C-contiguous float32 matrix. Other columns are read a part at a time
with ``ParquetFile.read`` on the calling thread (see ``storage.read_parquet``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cluster_pipeline.core.errors import CorruptPartError, NotFoundError
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.store.snapshot import CollectionSnapshot, PartInfo
from cluster_pipeline.core.store.storage import ArrowFile, Storage, read_parquet

STREAM_BATCH_ROWS = 16_384
STREAM_BUFFER_BYTES = 4 << 20

Rows: TypeAlias = np.ndarray | pc.Expression | None
"""Which live documents: all (None), sorted row numbers, or those a filter expression keeps."""


class CollectionScanner:
    """Reads ``snapshot``'s live documents; ``after``: only the parts written after that sequence number
    (rows are then numbered within those parts). ``metadata_columns``: the collection's non-embedding
    columns (its ``schema.json``)."""

    def __init__(
        self, storage: Storage, snapshot: CollectionSnapshot, metadata_columns: Sequence[str], after: int = 0
    ) -> None:
        self.storage = storage
        self.snapshot = snapshot
        self.metadata_columns = list(metadata_columns)
        self.parts = tuple(p for p in snapshot.parts if p.sequence > after)
        self._tombstones: dict[str, pa.Array] = {}

    @cached_property
    def metadata_schema(self) -> pa.Schema:
        """Arrow types of ``document_id`` and the metadata columns, as the parts store them (the first
        part with a non-null type for a column gives it); reads only the parts' footers."""
        fields: dict[str, pa.Field] = {}
        for part in self.parts:
            with self._reading(part):
                stored = pq.ParquetFile(self.storage.parquet_stream(part.key)).schema_arrow
            for name in ["document_id", *self.metadata_columns]:
                if name in stored.names and (name not in fields or pa.types.is_null(fields[name].type)):
                    fields[name] = stored.field(name)
        return pa.schema([fields[name] for name in ["document_id", *self.metadata_columns] if name in fields])

    @contextmanager
    def _reading(self, part: PartInfo, key: str | None = None) -> Iterator[None]:
        """Reading ``part``'s file ``key`` (default: its Parquet file): one that is not whole Parquet or Arrow
        (emptied, truncated, overwritten) is CorruptPartError, naming that file."""
        try:
            yield
        except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError, as is mapping an empty file
            if isinstance(error, FileNotFoundError):
                raise
            raise CorruptPartError(
                f"Part {self.storage.uri(key or part.key)} of collection {self.snapshot.collection!r} cannot be read "
                f"({str(error).splitlines()[0]}); restore that file from a backup, or remove it (its documents "
                "go with it) and ingest them again."
            ) from None

    def _field(self, name: str) -> pa.Field:
        """Column ``name`` as the collection types it (a column no part has yet: the null type)."""
        if name == "document_id":  # ingest stores every id as a string
            return pa.field(name, pa.string())
        if name in self.snapshot.features:
            return pa.field(name, pa.list_(pa.float32(), self.snapshot.features[name]))
        known = self.metadata_schema
        return known.field(name) if name in known.names else pa.field(name, pa.null())

    def _deleted(self, part: PartInfo) -> pa.Array | None:
        """The ids deleted after ``part`` was written (None: no tombstone applies to it)."""
        keys = [tombstone.key for tombstone in self.snapshot.deletions_after(part)]
        for key in keys:
            if key not in self._tombstones:
                self._tombstones[key] = read_parquet(self.storage, key, columns=["document_id"])[0].combine_chunks()
        return pa.concat_arrays([self._tombstones[key] for key in keys]) if keys else None

    def _live(self, columns: Sequence[str], batch_rows: int | None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(row of the first document, batch)`` of the live documents' ``columns`` that each part has,
        part by part: in batches of at most ``batch_rows`` (a vectors file's own batches, or Parquet
        streamed through a small buffer), or (None) each part read whole."""
        row = 0
        for part in self.parts:
            deleted = self._deleted(part)
            batches = self._part_batches(part, columns, batch_rows, deleted is not None)
            while True:
                with self._reading(part):
                    batch = next(batches, None)
                if batch is None:
                    break
                if deleted is not None:
                    batch = batch.filter(pc.invert(pc.is_in(batch.column("document_id"), value_set=deleted)))
                yield row, batch.select([name for name in columns if name in batch.schema.names])
                row += batch.num_rows
        if len(self.parts) == len(self.snapshot.parts) and row != self.snapshot.num_documents:
            raise NotFoundError(f"Collection {self.snapshot.collection!r} changed while loading; run again.")

    def _part_batches(
        self, part: PartInfo, columns: Sequence[str], batch_rows: int | None, with_ids: bool
    ) -> Iterator[pa.RecordBatch]:
        """The batches of ``part``'s ``columns`` it has (``with_ids``: and ``document_id``; it also counts
        the rows of a part that has none of ``columns``)."""
        features = [name for name in columns if name in self.snapshot.features] if part.vectors_key else []
        others = [name for name in columns if name not in features]
        if features and set(others) <= {"document_id"}:  # all in the vectors file
            yield from self._vector_batches(part, [*features, "document_id"] if with_ids else columns, batch_rows)
            return
        streamed = {} if batch_rows is None else {"pre_buffer": False, "buffer_size": STREAM_BUFFER_BYTES}
        reader = pq.ParquetFile(self.storage.parquet_stream(part.key), **streamed)
        present = [name for name in others if name in reader.schema_arrow.names]
        read = present if present and not with_ids else list(dict.fromkeys([*present, "document_id"]))
        if features:  # metadata and vectors together: both files read whole, side by side
            table = reader.read(columns=read, use_threads=False)
            vectors = pa.Table.from_batches(list(self._vector_batches(part, features, None)))
            for name in features:
                table = table.append_column(name, vectors.column(name))
            yield from table.to_batches()
        elif batch_rows is None:
            yield from reader.read(columns=read, use_threads=False).to_batches()
        else:
            yield from reader.iter_batches(batch_size=batch_rows, columns=read, use_threads=False)

    def _vector_batches(
        self, part: PartInfo, columns: Sequence[str], batch_rows: int | None
    ) -> Iterator[pa.RecordBatch]:
        """``columns`` of ``part``'s vectors file, record batch by record batch (sliced to ``batch_rows``);
        each batch's pages are let go once the consumer asks for the next (``ArrowFile.release``)."""
        assert part.vectors_key is not None
        with self._reading(part, part.vectors_key):
            file: ArrowFile = self.storage.arrow_file(part.vectors_key)
        for index in range(file.reader.num_record_batches):
            with self._reading(part, part.vectors_key):
                batch = file.reader.get_batch(index).select(columns)
            step = batch.num_rows if batch_rows is None else batch_rows
            for start in range(0, batch.num_rows, max(step, 1)):
                yield batch.slice(start, step)
            for column in batch.columns:
                for buffer in column.buffers():
                    if buffer is not None:
                        file.release(buffer)

    def scan(
        self, columns: Sequence[str], *, rows: Rows = None, batch_rows: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The kept live documents' ``columns`` (as the collection types them), in collection order, a
        part (or ``batch_rows`` rows) at a time."""
        target = pa.schema([self._field(name) for name in columns])
        for start, batch in self._live(columns, batch_rows):
            batch = _conformed(batch, target)
            if isinstance(rows, pc.Expression):
                batch = batch.filter(rows)
            elif rows is not None:
                lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
                batch = batch.take(pa.array(rows[lo:hi] - start))
            yield batch

    def table(self, columns: Sequence[str], *, rows: Rows = None) -> pa.Table:
        """``scan`` as one table (a filter expression may use only these ``columns``)."""
        return pa.Table.from_batches(
            list(self.scan(columns, rows=rows)), schema=pa.schema([self._field(name) for name in columns])
        )

    def vectors(self, feature: str, batch_rows: int = STREAM_BATCH_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(row of the first document, (rows, D) float32 view)`` over every live document's ``feature``:
        the working memory is about one batch, whatever the part's row-group size."""
        dim = self.snapshot.dimension(feature)
        for start, batch in self._live([feature], batch_rows):
            # a view of the batch's values; a copy (nulls as NaN) only for a part not written by ingest
            yield start, batch.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)

    def matrix(
        self,
        feature: str,
        *,
        rows: np.ndarray | None = None,
        out: np.ndarray | None = None,
        progress: Progress | None = None,
        stage: str = "load",
        batch_rows: int = STREAM_BATCH_ROWS,
    ) -> np.ndarray:
        """``feature`` as one C-contiguous ``(N, D)`` float32 matrix (``rows``: only those sorted rows);
        peak memory is the matrix plus one streamed batch. ``out``: fill this ``(len(rows), D)`` array (or
        a column block of a wider matrix) instead of a new one."""
        dim = self.snapshot.dimension(feature)
        progress = progress or Progress.silent()
        total = self.snapshot.num_documents
        matrix = np.empty((total if rows is None else len(rows), dim), dtype=np.float32) if out is None else out
        progress.update(stage, 0, total)
        filled = 0
        for start, values in self.vectors(feature, batch_rows):
            if rows is None:
                matrix[start : start + len(values)] = values
            else:
                lo, hi = np.searchsorted(rows, [start, start + len(values)])
                matrix[filled : filled + hi - lo] = values[rows[lo:hi] - start]
                filled += hi - lo
            progress.update(stage, start + len(values), total)
        return matrix


def _conformed(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``target``'s columns and types: a column the part lacks as nulls, another type cast."""
    present = batch.schema.names  # a cast to the type a column has already is free (no copy)
    arrays = [
        batch.column(f.name).cast(f.type) if f.name in present else pa.nulls(batch.num_rows, f.type) for f in target
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=target)
