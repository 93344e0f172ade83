"""What an execution says about its topics beyond the clusters: their hierarchy and their course
over time (``core.topics.hierarchy``, ``core.topics.over_time``), computed after the labels, stored
in the ExecutionResult and drawn beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.topics.hierarchy import build_hierarchy
from cluster_pipeline.core.topics.options import TopicsOptions
from cluster_pipeline.core.topics.over_time import TopicsOverTime, time_column, topics_over_time

if TYPE_CHECKING:
    from cluster_pipeline.core.labels.terms import TermCounts


@dataclass(frozen=True)
class TopicStructure:
    hierarchy: dict[str, Any] | None
    over_time: TopicsOverTime | None


def topic_structure(
    fitted: FittedClustering,
    cluster_labels: list[str],
    documents: pd.DataFrame,
    document_labels: np.ndarray,
    options: TopicsOptions,
    *,
    schema: pa.Schema,
    times: Callable[[str], pd.Series] | None = None,
    word_counts: TermCounts | None = None,
) -> TopicStructure:
    """The tree of the fitted clusters (named from ``documents`` in clusters ``document_labels``) and,
    when the metadata ``schema`` has a time column, the clusters over time (``times(column)``: every
    document's time in collection order; default: ``documents``' column). ``word_counts``: the labels'
    counts of the same documents' words by cluster, if they made them (``build_hierarchy``)."""
    hierarchy = build_hierarchy(
        fitted.centroids,
        fitted.cluster_sizes,
        cluster_labels,
        documents,
        document_labels,
        text_fields=options.text_fields,
        num_keywords=options.num_keywords,
        word_counts=word_counts,
    )
    column = time_column(schema, options.time_column)
    over_time = None
    if column is not None:
        values = times(column) if times is not None else documents[column]
        over_time = topics_over_time(values, fitted.labels, fitted.num_clusters, column)
    return TopicStructure(hierarchy, over_time)
