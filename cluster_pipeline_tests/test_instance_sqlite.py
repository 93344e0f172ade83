"""Executions hold a SQLite Dagster instance's databases open (``instance_sqlite``), on a real on-disk instance."""

from pathlib import Path

from dagster import instance_for_test

from cluster_pipeline.instance_sqlite import held_connections
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
