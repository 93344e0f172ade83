"""Helpers to run the real clustering job against a real (ephemeral or temporary) Dagster instance."""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, materialize

from cluster_pipeline.assets import CLUSTERING_ASSETS
from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.resources import LakeResource, LLMResource
from cluster_pipeline.runs import register_partition


def create_config(lake: Lake, **fields: Any) -> ClusterConfig:
    return ConfigStore(lake).create(parse_config({"collection": "c", **fields}))


def materialize_config(
    lake: Lake, config: ClusterConfig, instance: DagsterInstance, resources: dict[str, Any] | None = None
) -> tuple[Any, ExecutionResult | None]:
    """Materialize all clustering assets for the configuration's partition; return run and result.

    ``resources`` adds to or replaces the defaults (the lake, and no LLM).
    """
    register_partition(instance, config)
    outcome = materialize(
        CLUSTERING_ASSETS,
        partition_key=config.partition_key,
        instance=instance,
        resources={"lake": LakeResource(root=str(lake.storage.root)), "llm": LLMResource(), **(resources or {})},
        raise_on_error=False,
    )
    run_id = run_id_from_dagster_run(outcome.run_id)
    results = ResultStore(lake)
    result = (
        results.get(config.namespace, run_id, config.cluster_id)
        if results.exists(config.namespace, config.cluster_id, run_id)
        else None
    )
    return outcome, result
