"""The demo: a generated collection, a kmeans configuration, one execution through Dagster."""

from __future__ import annotations

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.pipeline.demo_data import TOPICS, generate_demo_documents
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.runs import execute_in_process, open_instance

DEMO_COLLECTION = "demo-news"


def demo_config(lake: Lake, namespace: str) -> ClusterConfig:
    """The demo's configuration, created once and reused by later demo runs."""
    configs = ConfigStore(lake)
    for config in configs.list(namespace):
        if config.collection == DEMO_COLLECTION and config.description == "demo":
            return config
    return configs.create(
        ClusterConfig(
            namespace=namespace,
            collection=DEMO_COLLECTION,
            algorithm="kmeans",
            parameters={"n_clusters": len(TOPICS)},
            description="demo",
        )
    )


def run_demo(lake: Lake, *, namespace: str = "default", num_documents: int = 3000) -> tuple[ExecutionResult, str]:
    """Ingest the demo collection (first run only), execute its configuration, return the result and its path."""
    collections = CollectionStore(lake)
    try:
        collections.schema(namespace, DEMO_COLLECTION)
    except NotFoundError:
        collections.ingest(namespace, DEMO_COLLECTION, generate_demo_documents(num_documents))
    config = demo_config(lake, namespace)
    with open_instance() as instance:
        result = execute_in_process(config, lake, instance)
    return result, ResultStore(lake).uri(result)
