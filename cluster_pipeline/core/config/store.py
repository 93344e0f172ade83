"""Where configurations live: one JSON object each in the lake, with a name claimed per namespace.

A configuration's ``name`` is unique in its namespace and makes its Dagster partition
(``<namespace>.<name>``); the claim of a name is its own small file, written create-only, so two
configurations created at once never share one.
"""

from __future__ import annotations

import builtins
import difflib
import json
import logging
import re

from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.errors import (
    AlreadyExistsError,
    ClusterPipelineError,
    ConfigurationError,
    InvalidIdentifierError,
    NotFoundError,
)
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.ids import check_config_name, check_namespace, is_cluster_id
from cluster_pipeline.core.outbound import check_url
from cluster_pipeline.core.store.lake import Lake

log = logging.getLogger(__name__)


def default_name(config: ClusterConfig) -> str:
    """``<collection>-<algorithm>[-<main parameter>]``, e.g. ``agnews-kmeans-k4``, ``news-hdbscan-mcs50``;
    attribute groups name their columns: ``shop-attribute_based-category-brand``."""
    parts = [config.collection, config.algorithm, *registry.spec(config.algorithm).name_parts(config.parameters)]
    name = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower()).strip("-._")
    return name[:72] or config.algorithm


def split_partition_key(partition_key: str) -> tuple[str, str]:
    """``(namespace, name or clust_… id)`` of a partition key (``ClusterConfig.partition_key`` in both its
    forms); InvalidIdentifierError if it is neither."""
    namespace, dot, reference = partition_key.partition(".")
    try:
        if not dot:
            raise InvalidIdentifierError(f"no '.' between namespace and configuration in {partition_key!r}")
        check_namespace(namespace)
        if not is_cluster_id(reference):
            check_config_name(reference)
    except InvalidIdentifierError as error:
        raise InvalidIdentifierError(
            f"Partition {partition_key!r} is not a cluster configuration's (<namespace>.<name>): {error}"
        ) from None
    return namespace, reference


def _check_webhooks(config: ClusterConfig) -> None:
    """Refuse a configuration whose webhooks may not be requested (``core.outbound``), before it is stored;
    they are checked again at every send."""
    for url in config.webhooks:
        check_url(url)


class ConfigStore:
    """Configurations of one lake, one JSON object each."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def create(self, config: ClusterConfig) -> ClusterConfig:
        """Save a new configuration, its name (derived when it has none) claimed first; returns it named.
        A derived name that is taken gets ``-2``, ``-3``, …; a given one that is taken is refused."""
        key = self.lake.cluster_config_key(config.namespace, config.cluster_id)
        _check_webhooks(config)
        if self.lake.storage.exists(key):
            raise AlreadyExistsError(f"Cluster configuration {config.cluster_id!r} exists already.")
        config = config.model_copy(update={"name": self._claim_name(config)})
        try:
            self.lake.storage.write_new(key, config.model_dump_json(indent=2).encode())
        except BaseException:
            self.lake.storage.delete(self.lake.cluster_name_key(config.namespace, str(config.name)))
            raise
        return config

    def replace(self, config: ClusterConfig) -> ClusterConfig:
        """Store a revised configuration over its current one (one atomic write; see ``core.config.revisions``)."""
        _check_webhooks(config)
        self.lake.storage.write_replace(self._stored_key(config), config.model_dump_json(indent=2).encode())
        return config

    def delete(self, config: ClusterConfig) -> None:
        """Remove the configuration, then release its name (its executions are the ResultStore's)."""
        self.lake.storage.delete(self._stored_key(config))
        if config.name is not None:
            claim = self.lake.cluster_name_key(config.namespace, config.name)
            if self.lake.storage.exists(claim) and self._owner(config.namespace, config.name) == config.cluster_id:
                self.lake.storage.delete(claim)

    def _stored_key(self, config: ClusterConfig) -> str:
        key = self.lake.cluster_config_key(config.namespace, config.cluster_id)
        if not self.lake.storage.exists(key):
            raise NotFoundError(
                f"Cluster configuration {config.cluster_id!r} not found in namespace {config.namespace!r}."
            )
        return key

    def _claim_name(self, config: ClusterConfig) -> str:
        base = config.name or default_name(config)
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base[:72]}-{attempt}"
            if self._claim(config.namespace, name, config.cluster_id):
                return name
            if config.name is not None:
                owner = self._owner(config.namespace, name)
                raise AlreadyExistsError(
                    f"A configuration named {name!r} exists already in namespace {config.namespace!r} ({owner}); "
                    "choose another name (--name)."
                )
        raise AlreadyExistsError(f"Too many configurations named {base!r}-…; choose a name (--name).")

    def _claim(self, namespace: str, name: str, cluster_id: str) -> bool:
        """Write the name's claim; False if another configuration holds it. A claim left by a creation
        that died before saving its configuration is released and taken."""
        key = self.lake.cluster_name_key(namespace, name)
        data = json.dumps({"cluster_id": cluster_id}).encode()
        for _ in range(2):
            try:
                self.lake.storage.write_new(key, data)
                return True
            except AlreadyExistsError:
                owner = self._owner(namespace, name)
                if self.lake.storage.exists(self.lake.cluster_config_key(namespace, owner)):
                    return False
                self.lake.storage.delete(key)
        return False

    def _owner(self, namespace: str, name: str) -> str:
        return str(json.loads(self.lake.storage.read_bytes(self.lake.cluster_name_key(namespace, name)))["cluster_id"])

    def resolve(self, namespace: str, reference: str) -> ClusterConfig:
        """The configuration named ``reference``, or whose ``clust_…`` id it is."""
        if is_cluster_id(reference):
            return self.get(namespace, reference)
        check_config_name(reference)
        config: ClusterConfig | None
        try:
            config = self.get(namespace, self._owner(namespace, reference))
        except NotFoundError:  # no claim (a configuration file written by hand), or a stale one
            config = next((c for c in self.list(namespace) if c.name == reference), None)
        if config is None or config.name != reference:
            names = [c.name for c in self.list(namespace) if c.name]
            close = difflib.get_close_matches(reference, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise NotFoundError(
                f"No cluster configuration named {reference!r} in namespace {namespace!r}; "
                f"{hint}list them with `cluster-pipeline clusters list`."
            )
        return config

    def for_partition(self, partition_key: str) -> ClusterConfig:
        """The configuration of a Dagster partition key (``<namespace>.<name>`` or ``<namespace>.<clust_…>``)."""
        return self.resolve(*split_partition_key(partition_key))

    def get(self, namespace: str, cluster_id: str) -> ClusterConfig:
        key = self.lake.cluster_config_key(namespace, cluster_id)
        if not self.lake.storage.exists(key):
            raise NotFoundError(
                f"Cluster configuration {cluster_id!r} not found in namespace {namespace!r}; "
                "list them with `cluster-pipeline clusters list`."
            )
        return self._read(key)

    def _read(self, key: str) -> ClusterConfig:
        try:
            return parse_config(json.loads(self.lake.storage.read_bytes(key)), stored=True)
        except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError and ConfigurationError too
            detail = str(error) if isinstance(error, ClusterPipelineError) else f"not a JSON configuration ({error})"
            raise ConfigurationError(
                f"Configuration file {self.lake.storage.uri(key)} is unreadable: {detail}. "
                "Fix the file or delete it and create the configuration again."
            ) from None

    def scan(self, namespace: str) -> tuple[builtins.list[ClusterConfig], builtins.list[str]]:
        """The readable configurations of a namespace (oldest first), and a warning per unreadable one."""
        configs, problems = [], []
        keys = self.lake.storage.list_keys(self.lake.clusters_prefix(namespace))
        for key in (key for key in keys if key.endswith(".json")):
            try:
                configs.append(self._read(key))
            except ConfigurationError as error:
                problems.append(f"skipped: {error}")
        return sorted(configs, key=lambda c: c.created_at), problems

    def list(self, namespace: str) -> builtins.list[ClusterConfig]:
        """Readable configurations, oldest first; an unreadable file is skipped with a logged warning,
        so one bad file never hides the others (or stops a sensor)."""
        configs, problems = self.scan(namespace)
        for problem in problems:
            log.warning(problem)
        return configs

    def list_all(self) -> builtins.list[ClusterConfig]:
        return [config for namespace in self.lake.namespaces() for config in self.list(namespace)]
