"""Cluster configurations of the service's namespace over their life: create, update, delete, list, get.

A face says what to change as ``ConfigurationChanges`` over the configuration's JSON form (the form it
is stored in), so the CLI's options, a configuration file and an HTTP request body all go through the
same rules: the model's validation, the checks against the collection, the versioning of ``revise``.
"""

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.config.revisions import Revision, revise
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.pipeline.selection import check_against_collection
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.service.scope import Scope


@dataclass(frozen=True)
class ConfigurationChanges:
    """Changes to a configuration's JSON form, applied in this order: ``fields`` over its top level (a
    configuration file, a request body); ``algorithm``, which starts the parameters afresh when it differs
    (one algorithm's parameters mean nothing to another); ``settings``, values by dotted path
    (``reduction.method``, ``parameters.n_clusters``), in order; then ``unset_parameters`` removed."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    algorithm: str | None = None
    settings: Sequence[tuple[str, Any]] = ()
    unset_parameters: Sequence[str] = ()

    def applied_to(self, data: Mapping[str, Any], shown: str) -> dict[str, Any]:
        """``data`` with the changes (``shown``: the configuration's name, for errors)."""
        changed = {**data, **self.fields}
        if self.algorithm:
            if changed.get("algorithm") not in (None, self.algorithm):
                changed["parameters"] = {}
            changed["algorithm"] = self.algorithm
        for path, value in self.settings:
            *parents, last = path.split(".")
            node = changed
            for name in parents:
                child = node.get(name)
                node[name] = child = dict(child) if isinstance(child, dict) else {}
                node = child
            node[last] = value
        parameters = dict(changed.get("parameters", {}))
        for name in self.unset_parameters:
            if name not in parameters:
                raise ConfigurationError(f"Cannot unset parameter {name!r}: {shown} has no such parameter.")
            del parameters[name]
        return {**changed, "parameters": parameters}


@dataclass(frozen=True)
class Deletion:
    """A deleted configuration and its history's fate: kept (read by its ``clust_…`` id) or removed."""

    config: ClusterConfig
    history_kept: bool
    executions: int  # kept, or removed


class Configurations:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.store = ConfigStore(scope.lake)

    def get(self, reference: str) -> ClusterConfig:
        """The configuration named ``reference``, or whose ``clust_…`` id it is (NotFoundError if none)."""
        return self.store.resolve(self.scope.namespace, reference)

    def list(self) -> builtins.list[ClusterConfig]:
        """The namespace's configurations, oldest first; an unreadable file is skipped with a warning."""
        configs, problems = self.store.scan(self.scope.namespace)
        for problem in problems:
            self.scope.warn(problem)
        return configs

    def create(self, changes: ConfigurationChanges) -> ClusterConfig:
        """A new configuration (named, when no name is given, after its collection, algorithm and main
        parameter), validated and checked against its collection, with its Dagster partition."""
        from cluster_pipeline.runs import register_partition

        data = changes.applied_to({}, "a new configuration")
        if "collection" not in data:
            raise ConfigurationError("A configuration needs a collection: pass --collection NAME.")
        config = parse_config({**data, "namespace": self.scope.namespace})
        self._check_against_collection(config)
        instance = self.scope.instance()  # first: a deployment whose instance is unreachable gets no half-made config
        config = self.store.create(config)
        register_partition(instance, config)
        return config

    def update(self, reference: str, changes: ConfigurationChanges) -> Revision:
        """The configuration revised (a new version when what executions compute changes), checked as at
        create; refused (ConflictError) while one of its executions is pending or processing."""
        from cluster_pipeline.runs import ensure_idle

        current = self.get(reference)
        data = changes.applied_to(current.model_dump(mode="json"), current.display_name)
        ensure_idle(self.scope.instance(), self.scope.lake, current, "update")
        revision = revise(current, data)
        self._check_against_collection(revision.config)
        self.store.replace(revision.config)
        return revision

    def delete(self, reference: str, *, keep_history: bool = True) -> Deletion:
        """Remove the configuration and its Dagster partition (its name is free again), and its
        ExecutionResults unless ``keep_history``; refused while one of its executions is in flight."""
        from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
        from cluster_pipeline.runs import ensure_idle

        config = self.get(reference)
        instance = self.scope.instance()
        ensure_idle(instance, self.scope.lake, config, "delete")
        self.store.delete(config)  # first: sensors and schedules stop seeing it
        instance.delete_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, config.partition_key)  # if it is there
        results = ResultStore(self.scope.lake)
        if keep_history:
            return Deletion(config, True, len(results.result_keys(config.namespace, config.cluster_id)))
        return Deletion(config, False, results.delete_history(config.namespace, config.cluster_id))

    def _check_against_collection(self, config: ClusterConfig) -> None:
        collections = CollectionStore(self.scope.lake)
        check_against_collection(collections, collections.snapshot(config.namespace, config.collection), config)
