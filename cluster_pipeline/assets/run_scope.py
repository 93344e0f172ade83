"""What the clustering step knows about its Dagster run: the configuration, run_id and lake.

``run_id`` is derived from the Dagster run id and ``created_at`` is the Dagster run's creation
time, so the ExecutionResult and the run in the UI point at each other and agree on when the
execution was requested (also while it was still queued). ``started_at`` is when the run started
(after any queueing): the time from there to the clustering chain is Dagster's own overhead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Failure

from cluster_pipeline.core.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.config import ClusterConfig, ConfigStore, split_partition_key
from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.execution import base_result, recording_failure
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.lake import Lake
from cluster_pipeline.core.results import ExecutionResult, ResultStore


@dataclass
class RunScope:
    config: ClusterConfig
    run_id: str
    created_at: datetime
    dagster_run_id: str
    lake: Lake
    started_at: float  # epoch seconds

    @classmethod
    def of(cls, context: AssetExecutionContext, lake: Lake) -> RunScope:
        try:
            namespace, cluster_id = split_partition_key(context.partition_key)
            config = ConfigStore(lake).get(namespace, cluster_id)
        except ClusterPipelineError as error:
            raise Failure(description=str(error), allow_retries=False) from None
        record = context.instance.get_run_record_by_id(context.run_id)
        created_at = record.create_timestamp if record else datetime.now(UTC)
        started_at = (record.start_time if record else None) or created_at.timestamp()
        return cls(config, run_id_from_dagster_run(context.run_id), created_at, context.run_id, lake, started_at)

    @property
    def collections(self) -> CollectionStore:
        return CollectionStore(self.lake)

    @property
    def results(self) -> ResultStore:
        return ResultStore(self.lake)

    def base(self, snapshot: CollectionSnapshot | None = None) -> ExecutionResult:
        return base_result(
            self.config, self.run_id, self.created_at, snapshot=snapshot, dagster_run_id=self.dagster_run_id
        )

    @contextmanager
    def failing_execution(self, snapshot: CollectionSnapshot | None = None) -> Iterator[None]:
        """Store a ``failed`` ExecutionResult for any error, and fail the step with its message."""
        try:
            with recording_failure(self.results, self.base(snapshot)):
                yield
        except ClusterPipelineError as error:
            raise Failure(
                description=str(error),
                metadata={"run_id": self.run_id, "status": "failed", "error_message": str(error)},
                allow_retries=False,
            ) from None
