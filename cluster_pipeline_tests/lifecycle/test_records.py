"""Runs of a configuration in Dagster's run storage: one execution at a time, which run yields."""

import pytest
from dagster import DagsterRunStatus

from cluster_pipeline.core.errors import ConflictError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.definitions import defs
from cluster_pipeline.lifecycle.records import refuse_second_execution
from cluster_pipeline.settings import PARTITION_TAG
from cluster_pipeline_tests.dagster_helpers import create_config


def run_of(instance, partition_key: str, status: DagsterRunStatus, job_name: str = "cluster_execution"):
    job = defs.resolve_job_def(job_name)
    return instance.create_run_for_job(job_def=job, tags={PARTITION_TAG: partition_key}, status=status)


def test_of_two_runs_in_flight_the_later_one_yields(lake, instance):
    config = create_config(lake)
    refuse_second_execution(instance, config)  # nothing in flight
    earlier = run_of(instance, config.partition_key, DagsterRunStatus.STARTED)
    later = run_of(instance, config.partition_key, DagsterRunStatus.NOT_STARTED)
    refuse_second_execution(instance, config, earlier.run_id)  # the earlier run goes on
    other = run_id_from_dagster_run(earlier.run_id)
    with pytest.raises(ConflictError, match=rf"already processing \({other}\); wait for it"):
        refuse_second_execution(instance, config, later.run_id)
    with pytest.raises(ConflictError, match=rf"already processing \({other}\)"):
        refuse_second_execution(instance, config)  # before launching, any run in flight refuses


def test_runs_that_ended_or_only_assign_new_documents_do_not_count(lake, instance):
    config = create_config(lake)
    run_of(instance, config.partition_key, DagsterRunStatus.SUCCESS)
    run_of(instance, config.partition_key, DagsterRunStatus.STARTED, job_name="assign_new_documents")
    assert refuse_second_execution(instance, config) is None  # neither refuses a new execution
