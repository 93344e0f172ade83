"""The lake: how namespaces, collections, configurations and executions are laid out in storage (the
README's "The lake" draws the tree). Every key is built here from validated ids, so no caller can
reach outside its namespace.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from cluster_pipeline.core.errors import InvalidIdentifierError
from cluster_pipeline.core.ids import (
    NAMESPACE_PATTERN,
    RESERVED_NAMESPACES,
    check_cluster_id,
    check_collection,
    check_config_name,
    check_namespace,
    check_run_id,
)
from cluster_pipeline.core.store.snapshot import CollectionSnapshot
from cluster_pipeline.core.store.storage import LocalStorage, Storage

DEFAULT_ROOT = "./.cluster_data"
ROOT_ENV_VAR = "CLUSTER_PIPELINE_ROOT"


def default_root() -> Path:
    """``$CLUSTER_PIPELINE_ROOT`` if set, else ``./.cluster_data``."""
    return Path(os.environ.get(ROOT_ENV_VAR) or DEFAULT_ROOT).expanduser().resolve()


class Lake:
    """Key layout over a Storage backend. Holds no state beyond the storage itself."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def local(cls, root: str | os.PathLike[str] | None = None) -> Lake:
        return cls(LocalStorage(root if root is not None else default_root()))

    def collection_prefix(self, namespace: str, collection: str) -> str:
        return f"{check_namespace(namespace)}/collections/{check_collection(collection)}/"

    def collection_schema_key(self, namespace: str, collection: str) -> str:
        return self.collection_prefix(namespace, collection) + "schema.json"

    def collection_object_key(self, namespace: str, collection: str, folder: str, sequence: int, rows: int) -> str:
        """A new part (``folder`` "parts") or tombstone ("deletions"), named by its sequence and row count."""
        kind = {"parts": "part", "deletions": "del"}[folder]
        name = f"{kind}-{sequence:06d}-{rows}-{secrets.token_hex(4)}.parquet"
        return f"{self.collection_prefix(namespace, collection)}{folder}/{name}"

    def collections_prefix(self, namespace: str) -> str:
        return f"{check_namespace(namespace)}/collections/"

    def clusters_prefix(self, namespace: str) -> str:
        return f"{check_namespace(namespace)}/clusters/"

    def cluster_config_key(self, namespace: str, cluster_id: str) -> str:
        return self.clusters_prefix(namespace) + f"{check_cluster_id(cluster_id)}.json"

    def cluster_name_key(self, namespace: str, name: str) -> str:
        """The claim of a configuration name: written once (atomically) by the configuration that owns it."""
        return f"{check_namespace(namespace)}/cluster_names/{check_config_name(name)}.json"

    def executions_prefix(self, namespace: str, cluster_id: str | None = None) -> str:
        prefix = f"{check_namespace(namespace)}/executions/"
        return prefix + f"{check_cluster_id(cluster_id)}/" if cluster_id else prefix

    def execution_key(self, namespace: str, cluster_id: str, run_id: str, suffix: str = "parquet") -> str:
        return self.executions_prefix(namespace, cluster_id) + f"{check_run_id(run_id)}.{suffix}"

    def assignments_prefix(self, namespace: str, cluster_id: str, run_id: str) -> str:
        """The assignment parts of new documents placed into execution ``run_id``'s clusters."""
        return f"{check_namespace(namespace)}/assignments/{check_cluster_id(cluster_id)}/{check_run_id(run_id)}/"

    def assignment_part_key(
        self, namespace: str, cluster_id: str, run_id: str, covered: CollectionSnapshot, assigned: int, novel: int
    ) -> str:
        """One assignments part, keyed by the collection version it brought up to date; the name carries
        that version's last sequence and the counts, so a sensor reads them from a listing."""
        name = f"asg-{covered.last_sequence:06d}-{assigned}-{novel}-{covered.version}.parquet"
        return self.assignments_prefix(namespace, cluster_id, run_id) + name

    def enrichment_key(self, namespace: str, cluster_id: str) -> str:
        """The enrichment table of a configuration: every document's latest cluster, replaced atomically."""
        return f"{check_namespace(namespace)}/enrichment/{check_cluster_id(cluster_id)}.parquet"

    def webhook_delivery_key(self, namespace: str, cluster_id: str, run_id: str) -> str:
        return f"{check_namespace(namespace)}/webhooks/{check_cluster_id(cluster_id)}/{check_run_id(run_id)}.json"

    def triggers_prefix(self, namespace: str) -> str:
        return f"{check_namespace(namespace)}/triggers/"

    def trigger_key(self, namespace: str, trigger_id: str) -> str:
        """A trigger object: ``trg_s_<cluster_id>`` (its schedule) or ``trg_e_<cluster_id>`` (its change trigger)."""
        kind, _, cluster_id = trigger_id.removeprefix("trg_").partition("_")
        if not trigger_id.startswith("trg_") or kind not in ("s", "e"):
            raise InvalidIdentifierError(
                f"Invalid trigger id {trigger_id!r}: expected 'trg_s_clust_…' or 'trg_e_clust_…'."
            )
        return self.triggers_prefix(namespace) + f"{kind}_{check_cluster_id(cluster_id)}.json"

    def label_cache_key(self, namespace: str, digest: str) -> str:
        """One cached LLM label, named by the sha256 hex digest of what was asked."""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise InvalidIdentifierError(f"Invalid label cache digest {digest!r}: expected 64 lowercase hex digits")
        return f"{check_namespace(namespace)}/label_cache/{digest}.json"

    def namespaces(self) -> list[str]:
        """Folders of the root that are namespaces (not the Dagster instance, nothing dropped in by hand)."""
        return [
            name
            for name in self.storage.list_children("")
            if NAMESPACE_PATTERN.fullmatch(name) and name not in RESERVED_NAMESPACES
        ]
