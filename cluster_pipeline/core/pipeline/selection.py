"""What an execution clusters: which documents (the configuration's filter, evaluated over only the
columns it names, gives the sorted matrix positions every later load reads) and by which vectors
(several features side by side in one matrix, as the README's "Several features" states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import InsufficientDocumentsError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.attributes import check_attributes
from cluster_pipeline.core.fit.clustering import FittedClustering, normalize_rows
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.store.filters import filter_fields, matching_rows, parse_filter, to_expression


@dataclass(frozen=True)
class Selection:
    """The documents of one execution: ``rows`` (sorted matrix positions; None: all of them), how
    many there are, out of how many in the collection version, and the filter that chose them."""

    rows: np.ndarray | None
    matched: int
    collection_documents: int
    filter: dict[str, Any] | None = None

    def record(self, fitted: FittedClustering | None = None) -> dict[str, Any]:
        """The ExecutionResult's ``selection``: documents in the collection, filter, matched, fitted on."""
        sample = None if fitted is None else fitted.sample_rows
        return {
            "collection_documents": self.collection_documents,
            "filter": self.filter,
            "matched": self.matched,
            "fitted": self.matched if sample is None else len(sample),
            "assigned_by": None if fitted is None else fitted.assigned_by,
        }


def check_against_collection(collections: CollectionStore, snapshot: CollectionSnapshot, config: ClusterConfig) -> None:
    """Refuse a configuration its collection cannot serve: a feature it lacks, a filter over fields it
    lacks or of the wrong type, attributes it lacks. Run when a configuration is created or updated,
    and again by every execution (the collection may have changed)."""
    feature_dimensions(snapshot, config)
    columns = registry.spec(config.algorithm).grouping_columns(config.parameters)
    if config.filters is None and columns is None:
        return
    schema = collections.scan(snapshot).metadata_schema
    subject = f"the collection {snapshot.collection!r}"
    if config.filters is not None:
        to_expression(parse_filter(config.filters, "filters"), schema, subject)
    if columns is not None:
        check_attributes(columns, schema, subject)


def select_documents(collections: CollectionStore, snapshot: CollectionSnapshot, config: ClusterConfig) -> Selection:
    """The documents the configuration clusters; InsufficientDocumentsError when its filter keeps fewer than 2."""
    total = snapshot.num_documents
    if config.filters is None:
        return Selection(None, total, total)
    tree = parse_filter(config.filters, "filters")
    subject = f"the collection {snapshot.collection!r}"
    scanner = collections.scan(snapshot)
    expression = to_expression(tree, scanner.metadata_schema, subject)
    table = scanner.table(sorted(filter_fields(tree)))
    rows = matching_rows(table, expression).to_numpy()
    if len(rows) < 2:
        found = "No documents match" if len(rows) == 0 else "Only 1 document matches"
        raise InsufficientDocumentsError(
            f"Insufficient documents for clustering: {found} the configuration's filter ({len(rows)} of {total:,} "
            f"documents of {subject}; need at least 2). Loosen the filter (`cluster-pipeline clusters update "
            f"{config.cluster_id} --filter …`) or ingest documents that match it."
        )
    return Selection(None if len(rows) == total else rows, len(rows), total, config.filters)


def feature_dimensions(snapshot: CollectionSnapshot, config: ClusterConfig) -> int:
    """Dimensions of the clustered vectors: the features' dimensions added up (FeatureNotFoundError
    for a feature the collection lacks)."""
    return sum(snapshot.dimension(name) for name in config.feature_names)


def load_matrix(
    collections: CollectionStore,
    snapshot: CollectionSnapshot,
    config: ClusterConfig,
    selection: Selection,
    progress: Progress | None = None,
) -> np.ndarray:
    """The ``(matched, D)`` float32 matrix the configuration clusters (see the module doc for several features)."""
    names = config.feature_names
    if len(names) == 1:
        return collections.scan(snapshot).matrix(names[0], rows=selection.rows, progress=progress)
    dimensions = [snapshot.dimension(name) for name in names]
    weights = config.weights or [1.0] * len(names)
    matrix = np.empty((selection.matched, sum(dimensions)), dtype=np.float32)
    start = 0
    for name, dimension, weight in zip(names, dimensions, weights, strict=True):
        block = matrix[:, start : start + dimension]
        collections.scan(snapshot).matrix(name, rows=selection.rows, out=block, progress=progress)
        normalize_rows(block)
        block *= np.float32(math.sqrt(weight / sum(weights)))
        start += dimension
    return matrix
