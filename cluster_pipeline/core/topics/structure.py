"""What an execution says about its topics beyond the clusters: their hierarchy and their course
over time (``core.hierarchy``, ``core.over_time``), computed after the labels, stored in the
ExecutionResult and drawn beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.topics.hierarchy import build_hierarchy
from cluster_pipeline.core.topics.over_time import TopicsOverTime, time_column, topics_over_time


@dataclass(frozen=True)
class TopicStructure:
    hierarchy: dict[str, Any] | None
    over_time: TopicsOverTime | None


def topic_structure(
    collections: CollectionStore,
    snapshot: CollectionSnapshot,
    config: ClusterConfig,
    fitted: FittedClustering,
    cluster_labels: list[str],
    documents: pd.DataFrame,
    document_labels: np.ndarray,
    times: Callable[[str], pd.Series] | None = None,
) -> TopicStructure:
    """The tree of the fitted clusters (named from ``documents``, whose clusters are ``document_labels``)
    and, when the collection has a time column, the clusters over time (``times(column)`` gives
    every document's time in collection order; default: ``documents``' column)."""
    hierarchy = build_hierarchy(
        fitted.centroids,
        fitted.cluster_sizes,
        cluster_labels,
        documents,
        document_labels,
        text_fields=config.labeling.text_fields,
        num_keywords=config.labeling.num_keywords,
    )
    column = time_column(collections.metadata_schema(snapshot), config.time_column)
    over_time = None
    if column is not None:
        values = times(column) if times is not None else documents[column]
        over_time = topics_over_time(values, fitted.labels, fitted.num_clusters, column)
    return TopicStructure(hierarchy, over_time)
