"""The demo (the README's first command): a generated collection, a k-means configuration and one
execution through Dagster, made with the same calls as every other command."""

from __future__ import annotations

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.service.collections import Collections
from cluster_pipeline.service.configurations import ConfigurationChanges, Configurations
from cluster_pipeline.service.executions import Executions

DEMO_COLLECTION = "demo-news"


def demo_configuration(configurations: Configurations, num_topics: int) -> ClusterConfig:
    """The demo's configuration, created once and reused by later demo runs."""
    for config in configurations.list():
        if config.collection == DEMO_COLLECTION and config.description == "demo":
            return config
    fields = {"collection": DEMO_COLLECTION, "algorithm": "kmeans", "parameters": {"n_clusters": num_topics}}
    return configurations.create(ConfigurationChanges({**fields, "description": "demo"}))


def run_demo(
    collections: Collections, configurations: Configurations, executions: Executions, num_documents: int = 3000
) -> ExecutionResult:
    """Ingest the demo collection (first run only), execute its configuration, return the result."""
    from cluster_pipeline.core.pipeline.demo_data import TOPICS, generate_demo_documents

    try:
        collections.describe(DEMO_COLLECTION)
    except NotFoundError:
        collections.ingest(DEMO_COLLECTION, generate_demo_documents(num_documents))
    return executions.execute(demo_configuration(configurations, len(TOPICS)).cluster_id)
