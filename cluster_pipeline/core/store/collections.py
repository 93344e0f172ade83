"""Collections: append-only parts of documents with one or more embedding features.

An ingest is checked whole (``core.store.ingest``), then published as one new part, atomically: its
vectors first, as an uncompressed Arrow IPC file (``part-….arrow``: ``document_id`` and each feature
as ``fixed_size_list<float32>[D]``, in record batches of about ``VECTOR_BATCH_BYTES``), then its ids and
metadata as Parquet (``part-….parquet``), whose appearance is the commit: a vectors file without its
Parquet is a torn ingest, never listed. The Arrow file maps straight into ``(N, D)`` float32 views
(Parquet decodes a ``fixed_size_list`` through repetition levels, 10-30× slower: the README's
*Performance and scale*), and pyarrow, pandas and polars read it as it is. Parts written before the
vectors moved keep them in the Parquet, and are read there. A deletion is one tombstone naming the ids
it removes from the parts written before it. Names carry sequence numbers and row counts
(``part-000003-1000-<token>.parquet``), so a sensor can tell how much changed from a listing alone.
Every read of the documents goes through ``core.store.scanner``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.errors import AlreadyExistsError, IngestError, NotFoundError
from cluster_pipeline.core.store.ingest import prepare_documents
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.scanner import CollectionScanner
from cluster_pipeline.core.store.snapshot import CollectionSnapshot, PartInfo
from cluster_pipeline.core.store.storage import exclusive

if TYPE_CHECKING:
    import pandas as pd

PART_PATTERN = re.compile(r"/parts/part-(\d{6})-(\d+)-[0-9a-f]+\.parquet$")
DELETION_PATTERN = re.compile(r"/deletions/del-(\d{6})-(\d+)-[0-9a-f]+\.parquet$")
READ_BATCH_ROWS = 65_536  # rows per row group of a part
VECTOR_BATCH_BYTES = 8 << 20  # per record batch of a vectors file: what a pass over S3 holds of it


@dataclass(frozen=True)
class EmbeddingModel:
    """The model that embedded a feature's text at ingest (``dimension`` once it has embedded something).
    Vectors of two models do not compare, so a collection keeps one model per feature."""

    provider: str
    name: str
    dimension: int | None = None

    def __str__(self) -> str:
        dimensions = f" ({self.dimension} dimensions)" if self.dimension else ""
        return f"{self.provider} model {self.name}{dimensions}"

    def same_model(self, other: EmbeddingModel | None) -> bool:
        return other is not None and (self.provider, self.name) == (other.provider, other.name)


@dataclass(frozen=True)
class CollectionSchema:
    """What every part of a collection agrees on: its embedding features and their dimensions, and the models
    that embedded the features made from text."""

    namespace: str
    collection: str
    features: dict[str, int]
    metadata_columns: list[str] = field(default_factory=list)
    embedding_models: dict[str, EmbeddingModel] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as listings show it: when it was declared (None: made by its first ingest), what it
    holds now (features empty before the first document)."""

    collection: str
    num_documents: int
    features: dict[str, int]
    metadata_columns: list[str]
    created_at: str | None = None
    description: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestReport:
    namespace: str
    collection: str
    part_key: str
    num_documents: int
    total_documents: int
    features: dict[str, int]


def vectors_key(part_key: str) -> str:
    """The key of the Arrow IPC file holding the vectors of the part ``part_key``."""
    return part_key.removesuffix(".parquet") + ".arrow"


class CollectionStore:
    """Ingest into, delete from, list and read the collections of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.storage = lake.storage

    def list_collections(self, namespace: str) -> list[str]:
        prefix = self.lake.collections_prefix(namespace)
        return sorted({key[len(prefix) :].split("/", 1)[0] for key in self.storage.list_keys(prefix)})

    def declaration_key(self, namespace: str, collection: str) -> str:
        return self.lake.collection_prefix(namespace, collection) + "collection.json"

    def create(
        self, namespace: str, collection: str, description: str | None = None, metadata: dict[str, object] | None = None
    ) -> CollectionInfo:
        """Declare an empty collection (its documents come with ``ingest`` or ``upsert``); AlreadyExistsError
        when the name is taken."""
        if self.exists(namespace, collection):
            raise AlreadyExistsError(f"Collection {collection!r} exists already in namespace {namespace!r}.")
        declared = {"created_at": datetime.now(UTC).isoformat(), "description": description,
                    "metadata": metadata or {}}  # fmt: skip
        self.storage.write_new(self.declaration_key(namespace, collection), json.dumps(declared).encode())
        return self.info(namespace, collection)

    def exists(self, namespace: str, collection: str) -> bool:
        return self.storage.exists(self.declaration_key(namespace, collection)) or self.storage.exists(
            self.lake.collection_schema_key(namespace, collection)
        )

    def info(self, namespace: str, collection: str) -> CollectionInfo:
        """The collection's declaration and contents now; NotFoundError when it does not exist."""
        if not self.exists(namespace, collection):
            raise NotFoundError(f"Collection {collection!r} not found in namespace {namespace!r}.")
        declared: dict[str, object] = {}
        if self.storage.exists(self.declaration_key(namespace, collection)):
            declared = json.loads(self.storage.read_bytes(self.declaration_key(namespace, collection)))
        try:
            schema = self.schema(namespace, collection)
        except NotFoundError:  # declared, no document yet
            return CollectionInfo(collection, 0, {}, [], **declared)  # type: ignore[arg-type]
        documents = self._listed(namespace, collection, schema.features).num_documents
        return CollectionInfo(collection, documents, schema.features, schema.metadata_columns, **declared)  # type: ignore[arg-type]

    def delete_collection(self, namespace: str, collection: str) -> int:
        """Remove a collection whole (parts, tombstones, schema); returns how many documents it had."""
        documents = self.info(namespace, collection).num_documents
        prefix = self.lake.collection_prefix(namespace, collection)
        with exclusive(self.storage, prefix + ".lock"):
            keys = self.storage.list_keys(prefix)
            # the schema and declaration last: an interrupted delete leaves a collection that still lists
            for key in sorted(keys, key=lambda k: k.endswith((".json",))):
                self.storage.delete(key)
        return documents

    def schema(self, namespace: str, collection: str) -> CollectionSchema:
        key = self.lake.collection_schema_key(namespace, collection)
        if not self.storage.exists(key):
            raise NotFoundError(
                f"Collection {collection!r} not found in namespace {namespace!r}; "
                "ingest documents first with `cluster-pipeline ingest`."
            )
        data = json.loads(self.storage.read_bytes(key))
        models = {name: EmbeddingModel(**model) for name, model in data.get("embedding_models", {}).items()}
        return CollectionSchema(namespace, collection, dict(data["features"]), list(data["metadata_columns"]), models)

    def _listed(self, namespace: str, collection: str, features: dict[str, int]) -> CollectionSnapshot:
        """The collection's parts and tombstones now, oldest first: one listing, never the data."""
        found: dict[re.Pattern[str], list[PartInfo]] = {PART_PATTERN: [], DELETION_PATTERN: []}
        keys = self.storage.list_keys(self.lake.collection_prefix(namespace, collection))
        vectors = {key for key in keys if key.endswith(".arrow")}
        for key in keys:
            for pattern, infos in found.items():
                if match := pattern.search(key):
                    beside = vectors_key(key)
                    infos.append(PartInfo(key, int(match[1]), int(match[2]), beside if beside in vectors else None))
        parts, deletions = (tuple(sorted(infos, key=lambda part: part.sequence)) for infos in found.values())
        return CollectionSnapshot(namespace, collection, parts, features, deletions)

    def snapshot(self, namespace: str, collection: str) -> CollectionSnapshot:
        """The collection as it is now (its schema and one listing)."""
        return self._listed(namespace, collection, self.schema(namespace, collection).features)

    def _live_ids_among(self, snapshot: CollectionSnapshot, ids: pa.Array) -> pa.ChunkedArray:
        """Which of ``ids`` are live documents of ``snapshot``."""
        return self.scan(snapshot).table(["document_id"], rows=pc.field("document_id").isin(ids)).column(0)

    def delete_documents(self, namespace: str, collection: str, document_ids: Sequence[str]) -> int:
        """Remove documents by id (one atomic tombstone object); unknown ids refuse the whole request."""
        ids = list(dict.fromkeys(str(i) for i in document_ids))
        if not ids:
            raise IngestError("No document ids to delete.")
        prefix = self.lake.collection_prefix(namespace, collection)
        with exclusive(self.storage, prefix + ".lock"):
            current = self.snapshot(namespace, collection)
            live = set(self._live_ids_among(current, pa.array(ids, pa.string())).to_pylist())
            unknown = [i for i in ids if i not in live]
            if unknown:
                raise IngestError(
                    f"Document {unknown[0]!r} is not in collection {collection!r} ({len(unknown)} unknown ids); "
                    "nothing was deleted."
                )
            key = self.lake.collection_object_key(
                namespace, collection, "deletions", current.last_sequence + 1, len(ids)
            )
            self.storage.write_parquet_new(key, pa.table({"document_id": pa.array(ids, pa.string())}))
        return len(ids)

    def check_embedding(self, namespace: str, collection: str, feature: str, model: EmbeddingModel | None) -> None:
        """Refuse (IngestError) vectors of ``feature`` from ``model`` (None: vectors given, not embedded here)
        when the collection's vectors of it come from another model: before the work of embedding, too."""
        try:
            existing = self.schema(namespace, collection)
        except NotFoundError:
            return
        _check_model(existing, feature, model)

    def ingest(
        self,
        namespace: str,
        collection: str,
        documents: pa.Table | pd.DataFrame,
        features: Sequence[str] | None = None,
        embedding_models: Mapping[str, EmbeddingModel] | None = None,
        *,
        replace: bool = False,
    ) -> IngestReport:
        """Check ``documents`` and append them as one new part; on any error nothing is written.

        Parameters
        ----------
        documents : table with ``document_id``, optional ``text``/metadata and embedding columns.
        features : embedding column names; by default every column of numeric lists (or, in CSV, of JSON
            lists) is an embedding feature.
        embedding_models : the model that embedded each feature computed from text (``core.embed``); a new
            collection records them, an existing one must have the same.
        replace : an upsert: live documents with the batch's ids are replaced (one tombstone for them, then
            the part; were the process killed between the two, a retry of the batch adds them again)
            instead of refusing the batch.
        """
        prefix = self.lake.collection_prefix(namespace, collection)  # checks both names
        with exclusive(self.storage, prefix + ".lock"):
            try:
                existing: CollectionSchema | None = self.schema(namespace, collection)
            except NotFoundError:
                existing = None
            known = existing.features if existing else None
            table, feature_dims = prepare_documents(documents, features, known)
            models = dict(embedding_models or {})
            if existing is not None:
                for feature in feature_dims:
                    _check_model(existing, feature, models.get(feature))
            current = self._listed(namespace, collection, known or {})
            if existing is not None:
                clash = self._live_ids_among(current, table.column("document_id").combine_chunks())
                if len(clash) and replace:
                    key = self.lake.collection_object_key(
                        namespace, collection, "deletions", current.last_sequence + 1, len(clash)
                    )
                    self.storage.write_parquet_new(key, pa.table({"document_id": clash}))
                    current = self._listed(namespace, collection, known or {})
                elif len(clash):
                    raise IngestError(
                        f"Duplicate document_id {clash[0].as_py()!r}: it is already in collection {collection!r}. "
                        "Use new ids for new documents."
                    )
            else:
                metadata = [c for c in table.column_names if c != "document_id" and c not in feature_dims]
                fields: dict[str, object] = {"features": feature_dims, "metadata_columns": metadata}
                if models:
                    fields["embedding_models"] = {name: asdict(model) for name, model in models.items()}
                schema = json.dumps(fields, indent=2, sort_keys=True)
                self.storage.write_replace(self.lake.collection_schema_key(namespace, collection), schema.encode())
            key = self.lake.collection_object_key(
                namespace, collection, "parts", current.last_sequence + 1, table.num_rows
            )
            names = list(feature_dims)
            batch_rows = max(1, VECTOR_BATCH_BYTES // (4 * sum(feature_dims.values())))
            try:
                self.storage.write_arrow_new(vectors_key(key), table.select(["document_id", *names]), batch_rows)
                self.storage.write_parquet_new(key, table.drop_columns(names), row_group_size=READ_BATCH_ROWS)
            except BaseException:
                if not self.storage.exists(key):  # vectors without their part are never listed: not kept
                    self.storage.delete(vectors_key(key))
                if existing is None:  # a new collection's schema comes with its first part, or not at all
                    self.storage.delete(self.lake.collection_schema_key(namespace, collection))
                raise
        return IngestReport(
            namespace, collection, key, table.num_rows, current.num_documents + table.num_rows, feature_dims
        )

    def documents_page(
        self, namespace: str, collection: str, offset: int, limit: int, *, vectors: bool = False
    ) -> tuple[pa.Table, int]:
        """Live documents ``offset`` to ``offset + limit`` in collection order (metadata, and the embedding
        features when ``vectors``), and how many there are in all."""
        snapshot = self.snapshot(namespace, collection)
        scanner = self.scan(snapshot)
        columns = ["document_id", *scanner.metadata_columns, *(snapshot.features if vectors else ())]
        stop = min(offset + limit, snapshot.num_documents)
        rows = np.arange(offset, stop) if stop > offset else np.array([], dtype=np.int64)
        return scanner.table(columns, rows=rows), snapshot.num_documents

    def scan(self, snapshot: CollectionSnapshot, *, after: int = 0) -> CollectionScanner:
        """The reader of ``snapshot``'s documents (``after``: only its parts written after that sequence)."""
        metadata = self.schema(snapshot.namespace, snapshot.collection).metadata_columns
        return CollectionScanner(self.storage, snapshot, metadata, after)

    def load_documents(
        self, snapshot: CollectionSnapshot, columns: Sequence[str] | None = None, rows: np.ndarray | None = None
    ) -> pd.DataFrame:
        """``document_id`` and metadata ``columns`` (default: all; no embeddings) in matrix order (all
        documents, or the sorted rows ``rows``)."""
        scanner = self.scan(snapshot)
        wanted = scanner.metadata_columns if columns is None else columns
        names = ["document_id", *(c for c in wanted if c in scanner.metadata_columns)]
        return scanner.table(names, rows=rows).to_pandas()

    def load_document_ids(self, snapshot: CollectionSnapshot) -> pa.ChunkedArray:
        """``document_id`` as an Arrow string column in matrix order (compact: no Python object per row)."""
        return self.scan(snapshot).table(["document_id"]).column(0)


def _check_model(existing: CollectionSchema, feature: str, model: EmbeddingModel | None) -> None:
    recorded = existing.embedding_models.get(feature)
    if (recorded is None and model is None) or (model is not None and model.same_model(recorded)):
        return
    where = f"Collection {existing.collection!r}"
    if recorded is None:
        raise IngestError(
            f"{where} holds {feature!r} vectors given at ingest, by a model it does not know, so it cannot take "
            f"vectors embedded by {model}. Ingest vectors (--feature {feature}), or embed into a new collection."
        )
    if model is None:
        raise IngestError(
            f"{where} embeds {feature!r} from text with {recorded}: ingest text with --embed COLUMNS, not vectors, "
            "or ingest the vectors into a new collection."
        )
    raise IngestError(
        f"{where} embeds {feature!r} with {recorded}, not {model}: vectors of two models do not compare. "
        f"Set CLUSTER_PIPELINE_EMBEDDING_MODEL={recorded.name}, or ingest into a new collection."
    )
