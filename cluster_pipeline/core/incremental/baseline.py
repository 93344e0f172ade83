"""What new documents are assigned against: the latest completed execution of a configuration, the
collection as it saw it (``CollectionSnapshot.as_of`` its ``collection_version``), and the assignment
parts written against it since, one per collection version: ``asg-<seq>-<n>-<novel>-<version>.parquet``,
whose counts let the change sensor read how many new documents are novel from a listing alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import ExecutionError
from cluster_pipeline.core.store.collections import CollectionSnapshot
from cluster_pipeline.core.store.history import latest_completed
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore

PART_NAME = re.compile(r"asg-(\d{6})-(\d+)-(\d+)-(v\d+-[0-9a-f]{12})\.parquet$")


@dataclass(frozen=True)
class AssignmentPart:
    """One stored assignments part: the collection sequence and version it covers, and its counts."""

    key: str
    sequence: int
    assigned: int
    novel: int
    version: str


def assignment_parts(lake: Lake, namespace: str, cluster_id: str, run_id: str) -> list[AssignmentPart]:
    """The assignment parts written against execution ``run_id``, oldest first (one listing)."""
    parts = []
    for key in lake.storage.list_keys(lake.assignments_prefix(namespace, cluster_id, run_id)):
        match = PART_NAME.search(key)
        if match:
            parts.append(AssignmentPart(key, int(match[1]), int(match[2]), int(match[3]), match[4]))
    return sorted(parts, key=lambda part: part.sequence)


@dataclass(frozen=True)
class Baseline:
    """What new documents are assigned against: an execution, what it clustered, and the parts since."""

    result: ExecutionResult
    fitted: CollectionSnapshot
    parts: list[AssignmentPart]

    @property
    def covered_sequence(self) -> int:
        """The collection sequence up to which every document has a cluster (fitted or assigned)."""
        return max([self.fitted.last_sequence, *(p.sequence for p in self.parts)])

    @property
    def assigned(self) -> int:
        return sum(p.assigned for p in self.parts)

    @property
    def novel(self) -> int:
        return sum(p.novel for p in self.parts)

    def added_since_fit(self, snapshot: CollectionSnapshot) -> int:
        """Documents ingested after the fit (parts only: deletions do not make a collection grow)."""
        return sum(p.num_rows for p in snapshot.parts if p.sequence > self.fitted.last_sequence)


def baseline(lake: Lake, config: ClusterConfig, snapshot: CollectionSnapshot) -> Baseline | None:
    """The configuration's baseline within ``snapshot``'s history; None before its first completed execution."""
    result = latest_completed(ResultStore(lake), config.namespace, config.cluster_id)
    if result is None:
        return None
    fitted = snapshot.as_of(result.collection_version or "")
    if fitted is None:
        raise ExecutionError(
            f"Execution {result.run_id} clustered collection version {result.collection_version}, which is not in "
            f"the history of {config.collection!r} any more; execute {config.cluster_id} again to fit it anew."
        )
    return Baseline(result, fitted, assignment_parts(lake, config.namespace, config.cluster_id, result.run_id))
