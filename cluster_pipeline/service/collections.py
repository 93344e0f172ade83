"""Collections of documents in the service's namespace: declare, ingest or upsert, delete documents, list,
describe, page through, export, delete."""

import builtins
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.embed.documents import embed_documents
from cluster_pipeline.core.embed.embedders import embedder_for
from cluster_pipeline.core.embed.options import EmbeddingSettings
from cluster_pipeline.core.errors import ConfigurationError, ConflictError, IngestError, NotFoundError
from cluster_pipeline.core.incremental.export import ExportReport, export_collection
from cluster_pipeline.core.store.collections import CollectionInfo, CollectionSchema, CollectionStore, IngestReport
from cluster_pipeline.core.store.ingest import read_documents_file
from cluster_pipeline.service.scope import Scope

DEFAULT_FEATURE = "embedding"


class Collections:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.store = CollectionStore(scope.lake)

    def list(self) -> builtins.list[str]:
        return self.store.list_collections(self.scope.namespace)

    def create(
        self, collection: str, description: str | None = None, metadata: dict[str, object] | None = None
    ) -> CollectionInfo:
        """Declare an empty collection; AlreadyExistsError if the name is taken."""
        return self.store.create(self.scope.namespace, collection, description, metadata)

    def info(self, collection: str) -> CollectionInfo:
        return self.store.info(self.scope.namespace, collection)

    def list_info(self) -> builtins.list[CollectionInfo]:
        return [self.store.info(self.scope.namespace, name) for name in self.list()]

    def delete(self, collection: str) -> int:
        """Remove a collection and its documents (returns how many); refused (ConflictError) while a
        configuration clusters it."""
        users = [c.display_name for c in ConfigStore(self.scope.lake).scan(self.scope.namespace)[0]
                 if c.collection == collection]  # fmt: skip
        if users:
            raise ConflictError(
                f"Collection {collection!r} is clustered by {', '.join(users)}: delete those configurations first."
            )
        return self.store.delete_collection(self.scope.namespace, collection)

    def upsert(self, collection: str, documents: pa.Table) -> IngestReport:
        """Add documents, replacing live ones with the same ids (checked whole: one bad document refuses all)."""
        return self.store.ingest(self.scope.namespace, collection, documents, replace=True)

    def documents(self, collection: str, offset: int, limit: int, *, vectors: bool = False) -> tuple[pa.Table, int]:
        """A page of the live documents (with their embeddings when ``vectors``) and how many there are."""
        return self.store.documents_page(self.scope.namespace, collection, offset, limit, vectors=vectors)

    def describe(self, collection: str) -> CollectionSchema:
        """The collection's features and metadata columns; NotFoundError before its first ingest."""
        return self.store.schema(self.scope.namespace, collection)

    def ingest(
        self,
        collection: str,
        documents: pa.Table | str | Path,
        features: Sequence[str] | None = None,
        embed: Sequence[str] = (),
        embedding: EmbeddingSettings | None = None,
    ) -> IngestReport:
        """Append ``documents`` (a table, or a Parquet, CSV or JSON Lines file) as one part, checked as a
        whole: one bad document refuses the batch and nothing is written. ``features``: the embedding
        columns (default: detected). ``embed``: text columns to embed instead, into the one feature named in
        ``features`` (default: the collection's only feature, else ``embedding``), with ``embedding``'s model
        (default: from the environment, ``EmbeddingSettings.from_environment``)."""
        table = documents if isinstance(documents, pa.Table) else read_documents_file(documents)
        if not embed:
            return self.store.ingest(self.scope.namespace, collection, table, features=list(features or ()) or None)
        feature = self._embedded_feature(collection, features)
        embedder = embedder_for(embedding or EmbeddingSettings.from_environment())
        self.store.check_embedding(self.scope.namespace, collection, feature, embedder.model)  # before the work
        table, model = embed_documents(table, embed, feature, embedder)
        return self.store.ingest(self.scope.namespace, collection, table, [feature], {feature: model})

    def _embedded_feature(self, collection: str, features: Sequence[str] | None) -> str:
        if features:
            if len(features) > 1:
                raise IngestError(f"--embed makes one feature, not {len(features)}: name one --feature.")
            return features[0]
        try:
            known = self.describe(collection).features
        except NotFoundError:
            return DEFAULT_FEATURE
        return next(iter(known)) if len(known) == 1 else DEFAULT_FEATURE

    def delete_documents(self, collection: str, document_ids: Sequence[str]) -> int:
        """Remove documents by id (one atomic tombstone); returns how many were live."""
        return self.store.delete_documents(self.scope.namespace, collection, list(document_ids))

    def export(
        self,
        collection: str,
        output: str | Path,
        *,
        fmt: str | None = None,
        configuration: str | None = None,
        embeddings: bool = False,
    ) -> ExportReport:
        """Write the collection's live documents to ``output`` (Parquet, CSV or JSON Lines, atomically);
        with ``configuration`` (a name or ``clust_…`` id of one of its configurations), each document's
        latest cluster of it."""
        cluster_id = None
        if configuration is not None:
            config = ConfigStore(self.scope.lake).resolve(self.scope.namespace, configuration)
            if config.collection != collection:
                raise ConfigurationError(
                    f"{configuration} clusters collection {config.collection!r}, not {collection!r}: export "
                    f"{config.collection!r}, or name a configuration of {collection!r}."
                )
            cluster_id = config.cluster_id
        return export_collection(
            self.scope.lake, self.scope.namespace, collection, output, fmt=fmt, cluster_id=cluster_id,
            embeddings=embeddings,
        )  # fmt: skip
