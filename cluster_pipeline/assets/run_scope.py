"""What the clustering step knows about its Dagster run: the configuration, run_id and lake.

``run_id`` and ``created_at`` come from the Dagster run, so the result and the run in the UI point at
each other and agree on when the execution was requested; ``started_at`` is when the run started (the
time to the clustering chain is Dagster's overhead). The scope keeps the lifecycle promise from inside
the run: it names the worker process on the run, turns any error or interrupt into a stored ``failed``
ExecutionResult, and fails a run that finds an earlier one of its configuration in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import ClusterPipelineError, InvalidIdentifierError, NotFoundError
from cluster_pipeline.core.pipeline.execution import recording_failure
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.lifecycle.failures import reconcile_runs
from cluster_pipeline.lifecycle.records import base_of, record_worker, refuse_second_execution
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags


def configuration_of(context: dg.AssetExecutionContext, lake: Lake) -> ClusterConfig:
    """The configuration of the run's partition (an execution's or an assignment's); a step failure
    saying why when there is none, the partition then removed and the run canceled. The run gets the
    configuration's tags (``partitions.configuration_tags``) if it lacks them (launched from the UI)."""
    key = context.partition_key
    try:
        config = ConfigStore(lake).for_partition(key)
    except (InvalidIdentifierError, NotFoundError) as error:
        message = (
            f"Partition {key!r} names no cluster configuration ({str(error).rstrip('.')}), so there is nothing to "
            "execute; it has been removed. Partitions are made by creating a configuration: `cluster-pipeline "
            "clusters create --collection COLLECTION --algorithm kmeans --name my-config` adds the partition "
            "`<namespace>.my-config` (the UI's 'Add partition' cannot define one)."
        )
        context.instance.delete_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, key)
        # the run ends canceled, not failed: Dagster then shows neither a failed partition nor a
        # failed check (the UI's asset status and its latest check run), only this step's message
        context.instance.report_run_canceling(context.dagster_run, message=message)
        raise dg.Failure(description=message, allow_retries=False) from None
    except ClusterPipelineError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    tags = configuration_tags(config)
    if any(context.dagster_run.tags.get(tag) != value for tag, value in tags.items()):
        context.instance.add_run_tags(context.run_id, tags)
    return config


@dataclass
class RunScope:
    config: ClusterConfig
    lake: Lake
    instance: dg.DagsterInstance
    base: ExecutionResult  # what the run's result says before it has one: its ids, when, what started it
    started_at: float  # epoch seconds

    @classmethod
    def of(cls, context: dg.AssetExecutionContext, lake: Lake) -> RunScope:
        config = configuration_of(context, lake)
        record_worker(context.instance, context.dagster_run, config)
        base = base_of(context.instance, context.dagster_run, config)
        record = context.instance.get_run_record_by_id(context.run_id)
        started_at = (record.start_time if record else None) or base.created_at.timestamp()
        return cls(config, lake, context.instance, base, started_at)

    @property
    def results(self) -> ResultStore:
        return ResultStore(self.lake)

    @contextmanager
    def failing_execution(self) -> Iterator[None]:
        """Store a ``failed`` ExecutionResult for any error or interrupt, and fail the step with its
        message; first of all, while an earlier run of the configuration is in flight."""
        try:
            with recording_failure(self.results, self.base):
                reconcile_runs(self.instance, self.lake, self.config.partition_key)
                refuse_second_execution(self.instance, self.config, self.base.dagster_run_id)
                yield
        except ClusterPipelineError as error:
            raise dg.Failure(
                description=str(error),
                metadata={"run_id": self.base.run_id, "status": "failed", "error_message": str(error)},
                allow_retries=False,
            ) from None
