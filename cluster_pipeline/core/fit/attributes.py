"""``attribute_based`` clustering: the clusters are the groups of one or more metadata columns.

With ``attributes: [category, brand]`` every distinct (category, brand) pair among the documents is
one cluster (a document missing a value is noise), and everything after the fit runs as for any
clustering, so a grouping the data already has can be scored and named like a learned one. More
than ``max_groups`` fails the execution before anything is fitted: a label per group and a
silhouette over thousands of tiny clusters say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.errors import AlgorithmError, ConfigurationError
from cluster_pipeline.core.fit.options import ClusteringOptions

ROW = "__row__"
ATTRIBUTE_PARAMETERS = ("attributes", "max_groups")
MAX_ATTRIBUTE_GROUPS = 10_000


def check_attribute_options(options: ClusteringOptions, parameters: dict[str, Any]) -> None:
    """``attributes`` (one or more metadata columns) and ``max_groups`` (``parameters``, defaults
    included), and nothing that needs a fit; ValueError otherwise."""
    unknown = sorted(set(options.parameters) - set(ATTRIBUTE_PARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for attribute_based; valid: {', '.join(ATTRIBUTE_PARAMETERS)}"
        )
    attributes = parameters.get("attributes")
    if not (isinstance(attributes, list) and attributes and all(isinstance(a, str) and a for a in attributes)):
        raise ValueError(
            "attribute_based needs attributes: the metadata columns whose values make the groups, e.g. "
            "--param attributes=category,brand"
        )
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes lists a column twice: {attributes}")
    max_groups = parameters["max_groups"]
    if not isinstance(max_groups, int) or isinstance(max_groups, bool) or not 2 <= max_groups <= MAX_ATTRIBUTE_GROUPS:
        raise ValueError(f"max_groups must be an integer from 2 to {MAX_ATTRIBUTE_GROUPS:,}, got {max_groups!r}")
    refused = {
        "sample_size": options.sample_size is not None,
        "max_clusters": options.max_clusters is not None,
        "reduction 'umap'": options.reduction.method == "umap",
    }
    for name, present in refused.items():
        if present:
            raise ValueError(
                f"{name} does not apply to attribute_based: its clusters are the groups of {', '.join(attributes)}, "
                "fixed by the data (cap them with max_groups)"
            )


@dataclass(frozen=True)
class AttributeGroups:
    """Group index per document (-1: a value is missing) and each group's values, by index."""

    labels: np.ndarray
    values: list[dict[str, object]]

    def by_cluster(self, raw: np.ndarray, final: np.ndarray) -> list[dict[str, object]]:
        """Each final cluster's values, given the group index (``raw``) and final cluster of every row
        (noise reassigned to a cluster has no group of its own and is left out)."""
        members = (final >= 0) & (raw >= 0)
        group_of = np.full(int(final.max()) + 1 if members.any() else 0, -1, dtype=np.int64)
        group_of[final[members]] = raw[members]
        return [self.values[group] for group in group_of]


def check_attributes(attributes: list[str], schema: pa.Schema, subject: str) -> None:
    """Refuse attribute columns the documents do not have, or whose values cannot be grouped."""
    for name in attributes:
        if name not in schema.names:
            raise ConfigurationError(
                f"attribute_based: {name!r} is not a metadata column of {subject} "
                f"(columns: {', '.join(schema.names)}); set attributes to some of them."
            )
        kind = schema.field(name).type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise ConfigurationError(
                f"attribute_based: {name!r} holds {kind} values, which cannot be grouped; use columns of text, "
                "numbers, dates or true/false."
            )


def attribute_groups(table: pa.Table, attributes: list[str], max_groups: int) -> AttributeGroups:
    """The groups of ``table``'s ``attributes`` (one row per document, in matrix order); AlgorithmError
    when there are more than ``max_groups``."""
    import pyarrow.compute as pc  # imported when used: the registry, and so the CLI, import this module

    indexed = table.select(attributes).append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    # a group with a missing value is noise (drop_null: the rows' lists are never null)
    grouped = indexed.group_by(attributes, use_threads=False).aggregate([(ROW, "list")]).drop_null()
    if grouped.num_rows > max_groups:
        raise AlgorithmError(
            f"attribute_based: {' × '.join(attributes)} form {grouped.num_rows:,} groups among the "
            f"{table.num_rows:,} documents, more than max_groups={max_groups:,}. Group by fewer or coarser "
            f"columns, filter the documents, or raise max_groups (at most {MAX_ATTRIBUTE_GROUPS:,})."
        )
    rows = grouped.column(f"{ROW}_list").combine_chunks()
    labels = np.full(table.num_rows, -1, dtype=np.int64)
    labels[rows.flatten().to_numpy()] = pc.list_parent_indices(rows).to_numpy()
    return AttributeGroups(labels, grouped.select(attributes).to_pylist())
