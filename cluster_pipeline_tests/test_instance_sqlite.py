"""Executions hold a SQLite Dagster instance's databases open (``instance_sqlite``), on a real on-disk instance."""

from pathlib import Path

import pytest
from dagster import instance_for_test

from cluster_pipeline.runs.instance_sqlite import held_connections
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


def _wal(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def test_while_held_dagster_closing_its_connection_does_not_checkpoint(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        outcome, result = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}), instance)
        assert result is not None and result.status == "completed"  # the step ran with its connections held
        run = instance.get_run_by_id(outcome.run_id)
        run_log = Path(instance.event_log_storage.path_for_shard(outcome.run_id))

        instance.report_engine_event("not held", run)
        assert not _wal(run_log).exists()  # Dagster's connection was the last: checkpointed on close

        with held_connections(instance, outcome.run_id):
            instance.report_engine_event("held", run)
            assert _wal(run_log).stat().st_size > 0  # the write waits in the WAL, no checkpoint
        assert not _wal(run_log).exists()  # ours closed last: checkpointed once

        messages = [entry.message for entry in instance.all_logs(outcome.run_id)]
        assert "not held" in messages and "held" in messages


def test_a_run_created_inside_the_hold_writes_its_planned_events_without_checkpoints(lake, collections, tmp_path):
    """The CLI picks the run's id first, so the hold covers the run's creation (one planned event per
    asset and check) too: the run's event log is created through Dagster's storage, then held."""
    from dagster._core.utils import make_new_run_id

    from cluster_pipeline.runs.launcher import create_run, execution_job

    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        run_id = make_new_run_id()
        run_log = Path(instance.event_log_storage.path_for_shard(run_id))
        with held_connections(instance, run_id, create_shard=True) as held:
            assert held == run_id and run_log.exists()
            assert list(instance.all_logs(run_id)) == []  # an empty event log with Dagster's schema
            run = create_run(instance, config, execution_job(), run_id=run_id)
            assert run.run_id == run_id
            assert _wal(run_log).stat().st_size > 0  # the planned events wait in the WAL
        assert not _wal(run_log).exists()
        planned = [entry for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
        assert len(planned) >= 5  # the five assets' materializations (and their checks) planned


def test_a_hold_whose_run_was_never_created_leaves_no_event_log(tmp_path):
    """A refused execution (another run of the configuration in flight) creates no run: the event log
    made for it up front goes again."""
    from dagster._core.utils import make_new_run_id

    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        run_id = make_new_run_id()
        run_log = Path(instance.event_log_storage.path_for_shard(run_id))
        with pytest.raises(RuntimeError, match="refused"), held_connections(instance, run_id, create_shard=True):
            assert run_log.exists()
            raise RuntimeError("refused")
        assert not run_log.exists() and not _wal(run_log).exists()
