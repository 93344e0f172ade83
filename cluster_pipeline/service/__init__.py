"""The application service: everything a user can do, as plain typed calls, for every face.

The CLI and the HTTP API only parse, call a ``Service`` and print or serialize. A service works in one
namespace (``in_namespace``: the same lake and Dagster instance scoped to another, as an HTTP request
needs), takes the configuration model, ids and options objects, returns typed results and raises the
core's typed errors (``core.errors``): no printing, no exit codes. Warnings go to ``on_warning``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.ids import check_namespace
from cluster_pipeline.core.pipeline.demo_data import TOPICS, generate_demo_documents
from cluster_pipeline.core.store.api_keys import ApiKeyStore
from cluster_pipeline.core.store.history import HistoryQuery
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.deployment import environment_lake
from cluster_pipeline.service.collections import Collections
from cluster_pipeline.service.configurations import ConfigurationChanges, Configurations, Deletion
from cluster_pipeline.service.executions import ExecutionPage, Executions
from cluster_pipeline.service.scope import LazyInstance, Scope
from cluster_pipeline.service.triggers import Triggers

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cluster_pipeline.core.store.results import ExecutionResult

log = logging.getLogger(__name__)
DEMO_COLLECTION = "demo-news"
DEMO_TEXT_COLLECTION = "demo-news-text"


class Service:
    """The lake (and the Dagster instance beside it) as one namespace sees it."""

    def __init__(
        self,
        lake: Lake,
        namespace: str = "default",
        *,
        instance: DagsterInstance | None = None,
        root: Path | None = None,
        on_warning: Callable[[str], None] = log.warning,
    ) -> None:
        """``instance``: a Dagster instance to use (else the deployment's, under ``root``, opened when first needed)."""
        self._bind(Scope(lake, check_namespace(namespace), LazyInstance(root, instance), on_warning))

    def _bind(self, scope: Scope) -> Service:
        self.scope = scope
        self.collections = Collections(scope)
        self.configurations = Configurations(scope)
        self.executions = Executions(scope, self.configurations)
        self.triggers = Triggers(scope, self.configurations, self.executions)
        return self

    @classmethod
    def from_environment(
        cls, root: str | None = None, namespace: str = "default", *, on_warning: Callable[[str], None] = log.warning
    ) -> Service:
        """The deployment's lake (``deployment.environment_lake``: a folder, ``root`` if given, or S3)."""
        return cls(environment_lake(root), namespace, root=Path(root) if root else None, on_warning=on_warning)

    @property
    def namespace(self) -> str:
        return self.scope.namespace

    def in_namespace(self, namespace: str) -> Service:
        """This service (lake, instance, warnings) in another namespace."""
        return Service.__new__(Service)._bind(replace(self.scope, namespace=check_namespace(namespace)))

    @property
    def api_keys(self) -> ApiKeyStore:
        """The HTTP API's keys, kept in the data root (no namespace holds them)."""
        return ApiKeyStore(self.scope.lake.storage)

    def demo(self, num_documents: int = 3000, *, embed: bool = False) -> ExecutionResult:
        """The README's first command: the demo collection generated (first time only), its k-means
        configuration created (once), and executed through Dagster. ``embed``: a collection of its own whose
        vectors embed each document's title and text (``Collections.ingest``'s model) instead of hashed words."""
        collection = DEMO_TEXT_COLLECTION if embed else DEMO_COLLECTION
        try:
            self.collections.describe(collection)
        except NotFoundError:
            documents = generate_demo_documents(num_documents)
            if embed:
                documents = documents.drop_columns(["embedding"])
            self.collections.ingest(collection, documents, embed=["title", "text"] if embed else ())
        configs = self.configurations.list()
        config = next((c for c in configs if c.collection == collection and c.description == "demo"), None)
        if config is None:
            fields = {"collection": collection, "algorithm": "kmeans", "parameters": {"n_clusters": len(TOPICS)}}
            config = self.configurations.create(ConfigurationChanges({**fields, "description": "demo"}))
        return self.executions.execute(config.cluster_id)

    def close(self) -> None:
        """Dispose of the Dagster instance if this service opened one."""
        self.scope.instances.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = ["ConfigurationChanges", "Deletion", "ExecutionPage", "HistoryQuery", "Service"]
