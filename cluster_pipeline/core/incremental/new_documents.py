"""Keeping an execution's clusters current between fits: assign what was added since, never refit.

Each assignment part holds the documents added since the baseline (``core.incremental.baseline``)
was last brought up to date, placed by the execution's model (``core.incremental.model``), and is
named by the collection version it covers; it is written once (create-only), so assigning the same
version twice writes nothing new.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass

import numpy as np

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import AlreadyExistsError, ConfigurationError, NotFoundError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.incremental.baseline import AssignmentPart, Baseline, baseline
from cluster_pipeline.core.incremental.enrichment import refresh_enrichment
from cluster_pipeline.core.incremental.model import (
    Assigned,
    AssignmentModel,
    ModelMissingError,
    assign,
    assignment_table,
)
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult


def load_model(lake: Lake, result: ExecutionResult) -> AssignmentModel:
    key = lake.execution_key(result.namespace, result.cluster_id, result.run_id, "model.npz")
    try:
        return AssignmentModel.from_bytes(lake.storage.read_bytes(key))
    except NotFoundError:
        raise ModelMissingError(
            f"Execution {result.run_id} has no stored model to assign new documents with (it ran before "
            f"assignment existed); execute {result.cluster_id} again."
        ) from None


@dataclass(frozen=True)
class AssignmentRun:
    """What one assignment did: the baseline it used, the part it wrote (None when nothing was new)."""

    baseline: Baseline
    snapshot: CollectionSnapshot
    part: AssignmentPart | None
    assigned: Assigned | None
    method: str | None
    seconds: float

    @property
    def num_assigned(self) -> int:
        return self.part.assigned if self.part else 0

    @property
    def num_novel(self) -> int:
        return self.part.novel if self.part else 0


def unassignable(config: ClusterConfig) -> str | None:
    """Why new documents of ``config`` cannot be assigned without refitting (None when they can):
    the model holds one feature's centroids, every document, and clusters of vectors."""
    if config.features is not None and len(config.features) > 1:
        return "it clusters several features as one space"
    if config.filters is not None:
        return "it clusters only the documents its filter keeps"
    if registry.spec(config.algorithm).columns_parameter is not None:
        return "its clusters are attribute groups, not regions of the embedding space"
    return None


def assign_new_documents(lake: Lake, config: ClusterConfig, snapshot: CollectionSnapshot) -> AssignmentRun:
    """Assign the documents of ``snapshot`` added since the baseline, write their part, refresh the
    enrichment. Reads only the new parts' embeddings and the execution's small model. NotFoundError
    before the first completed execution, ConfigurationError for an ``unassignable`` configuration."""
    reason = unassignable(config)
    if reason is not None:
        raise ConfigurationError(
            f"New documents of {config.display_name} cannot be assigned without refitting: {reason}; "
            "execute it again instead (the change sensor does so for such configurations)."
        )
    started = time.perf_counter()
    # the baseline is looked up in the collection's whole history: a fit newer than ``snapshot`` (a
    # version pinned by the sensor, refitted since) covers it already
    base = baseline(lake, config, CollectionStore(lake).snapshot(config.namespace, config.collection))
    if base is None:
        raise NotFoundError(
            f"{config.cluster_id} has no completed execution to assign new documents to; execute it first "
            f"(`cluster-pipeline execute {config.cluster_id}`)."
        )
    if snapshot.last_sequence <= base.covered_sequence:
        refresh_enrichment(lake, config, snapshot)
        return AssignmentRun(base, snapshot, None, None, None, time.perf_counter() - started)
    model = load_model(lake, base.result)
    added = CollectionStore(lake).scan(snapshot, after=base.covered_sequence).table(["document_id", config.feature])
    ids = added.column("document_id")
    vectors = added.column(config.feature).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = np.ascontiguousarray(vectors.reshape(-1, snapshot.dimension(config.feature)), dtype=np.float32)
    assigned = assign(model, vectors)
    run_id = base.result.run_id
    table = assignment_table(ids, assigned).replace_schema_metadata(
        {"run_id": run_id, "method": model.method, "collection_version": snapshot.version}
    )
    key = lake.assignment_part_key(config.namespace, config.cluster_id, run_id, snapshot, len(ids), assigned.num_novel)
    with suppress(AlreadyExistsError):  # this version was assigned already: the same documents, the same clusters
        lake.storage.write_parquet_new(key, table)
    part = AssignmentPart(key, snapshot.last_sequence, len(ids), assigned.num_novel, snapshot.version)
    refresh_enrichment(lake, config, snapshot)
    return AssignmentRun(base, snapshot, part, assigned, model.method, time.perf_counter() - started)
