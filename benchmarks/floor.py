"""Dagster's own floor for the paths users run: a code location of the execution job's shape (one
multi-asset of five partitioned assets with five checks, the partitions dynamic) whose step does
nothing, on the same instance settings.

- ``python -m benchmarks.floor``: what ``cluster-pipeline execute`` would cost if the clustering cost
  nothing: Python start-up, ``import dagster``, opening the instance, one in-process run (its
  planned, materialization and check events) and the interpreter's exit.
- ``benchmarks.paths`` serves ``defs`` beside the project's code location in one ``dagster dev`` and
  launches ``FLOOR_JOB`` like the UI, to time the queue, the daemon and Dagster's run worker with
  nothing of ours to load.
"""

import dagster as dg
from dagster import AssetExecutionContext

KEYS = ["collection_embeddings", "cluster_assignments", "cluster_quality", "cluster_labels", "execution_result"]
CHECKS = ["silhouette_threshold", "davies_bouldin_threshold", "largest_cluster_fraction", "noise_fraction", "ari_vs_previous"]  # fmt: skip
PARTITIONS = dg.DynamicPartitionsDefinition(name="floor_configurations")
FLOOR_JOB = "floor_job"
LOCATION = "dagster_floor"
PARTITION = "bench.floor"


@dg.multi_asset(
    specs=[dg.AssetSpec(["floor", key], partitions_def=PARTITIONS) for key in KEYS],
    check_specs=[dg.AssetCheckSpec(name, asset=["floor", KEYS[-1]]) for name in CHECKS],
    can_subset=True,
)
def floor_execution(context: AssetExecutionContext):  # type: ignore[no-untyped-def]
    """Nothing but what Dagster records: five materializations and five check results."""
    for key in KEYS:
        yield dg.MaterializeResult(asset_key=["floor", key], metadata={"partition": context.partition_key})
    for name in CHECKS:
        yield dg.AssetCheckResult(check_name=name, asset_key=["floor", KEYS[-1]], passed=True)


defs = dg.Definitions(
    assets=[floor_execution],
    jobs=[dg.define_asset_job(FLOOR_JOB, selection=[floor_execution])],
    executor=dg.in_process_executor,  # as the project's definitions: one step, in the run worker
)


def main() -> None:
    """One in-process run of the floor job on ``$DAGSTER_HOME``'s instance, as the CLI runs an execution."""
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(PARTITIONS.name, [PARTITION])
    result = defs.resolve_job_def(FLOOR_JOB).execute_in_process(
        instance=instance,
        partition_key=PARTITION,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )
    if not result.success:
        raise SystemExit("the floor run failed; see its logs in the benchmark's Dagster home")


if __name__ == "__main__":
    main()
