"""The lifecycle guarantee under real signals (issue 12, items 4-6): SIGKILL, SIGTERM and Ctrl-C at
load, fit, labels and write, without and with the daemon. Whatever ends a run, its execution ends
``failed`` with a cause — written by the worker itself when it can (SIGTERM, Ctrl-C), else by the
next CLI command (no daemon) or the daemon's lifecycle sensor — and stays in the history.

Every run is held at its stage by ``core.checkpoints`` (a file the test writes), so each signal lands
exactly where it should, with no sleep racing the pipeline. All runs of a test run at once and share
one Dagster instance (and one daemon), which keeps the matrix to about a minute per test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterRunStatus

from cluster_pipeline.cli import main
from cluster_pipeline.core.checkpoints import HOLD_DIR_ENV, STAGES
from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.daemon_helpers import REPO, isolated_dagster_home, running_daemon
from cluster_pipeline_tests.test_status import launch_queued
from cluster_pipeline_tests.waiting import wait_until

DOCUMENTS = 300
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}
MATRIX = [(name, stage) for name in SIGNALS for stage in STAGES]


def cli(capsys, *args: str) -> dict:
    """The CLI in this process (the environment is the test's: same lake, same Dagster instance)."""
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def wait_for(predicate, what: str, timeout: float, log: Path | None = None):
    return wait_until(
        predicate, what, timeout, detail=lambda: f"\n{log.read_text()[-4000:]}" if log and log.exists() else ""
    )


def held_config(capsys, stage: str, *options: str) -> str:
    """A configuration of the collection whose executions will hold at ``stage``."""
    created = cli(capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", *options)
    (Path(os.environ[HOLD_DIR_ENV]) / f"{created['cluster_id']}.hold").write_text(stage)
    return created["cluster_id"]


def prepare(tmp_path: Path, capsys, combos: list[tuple[str, str]], *options: str) -> dict:
    """One collection, one configuration per (signal, stage)."""
    pq.write_table(blob_documents(DOCUMENTS, centers=3), tmp_path / "docs.parquet")
    cli(capsys, "ingest", "news", str(tmp_path / "docs.parquet"))
    return {combo: held_config(capsys, combo[1], *options) for combo in combos}


def reached(hold: Path, cluster_id: str, stage: str) -> int | None:
    """The pid of the worker holding at ``stage``, once it is there."""
    marker = hold / f"{cluster_id}.{stage}.reached"
    return int(marker.read_text()) if marker.exists() else None


def stored_result(lake: Lake, cluster_id: str) -> ExecutionResult | None:
    """Straight from the lake: no CLI command (which would settle runs itself) is involved."""
    results = ResultStore(lake).list("default", cluster_id)
    return results[0] if results else None


def assert_failed_with_cause(result: ExecutionResult | None, signal_name: str, stage: str) -> None:
    assert result is not None and result.status == "failed", (signal_name, stage, result)
    if signal_name == "SIGKILL":
        assert "worker process" in result.error_message and "before the execution completed" in result.error_message
    else:
        assert result.error_message == INTERRUPTED_MESSAGE, (signal_name, stage, result.error_message)
    if stage != "load":  # the snapshot was taken: the failed result says what was being clustered
        assert result.num_points == DOCUMENTS and result.collection_version is not None, (signal_name, stage, result)


def assert_no_torn_file(root: Path) -> None:
    for path in root.rglob("*.parquet"):
        if "dagster_home" not in path.parts:
            pq.read_table(path)  # raises on a torn file


def environment(tmp_path: Path, monkeypatch, **extra: str) -> dict[str, str]:
    """The lake, the hold folder (and ``extra``) for this process and the workers it starts."""
    hold = tmp_path / "hold"
    hold.mkdir()
    for name, value in {"CLUSTER_PIPELINE_ROOT": str(tmp_path / "lake"), HOLD_DIR_ENV: str(hold), **extra}.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


@pytest.mark.slow
def test_every_signal_at_every_stage_without_the_daemon(tmp_path, monkeypatch, capsys):
    env = environment(tmp_path, monkeypatch)
    combos = [*MATRIX, ("SIGINT", "fit")]  # Ctrl-C too
    configs = prepare(tmp_path, capsys, combos)
    hold = Path(env[HOLD_DIR_ENV])
    workers = {
        combo: subprocess.Popen(
            [sys.executable, "-m", "cluster_pipeline.cli", "execute", cluster_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for combo, cluster_id in configs.items()
    }
    try:
        for (name, stage), cluster_id in configs.items():
            pid = wait_for(lambda c=cluster_id, s=stage: reached(hold, c, s), f"{cluster_id} reaching {stage}", 180)
            assert pid == workers[(name, stage)].pid  # the CLI process is the worker
        for combo, worker in workers.items():
            worker.send_signal(SIGNALS.get(combo[0], signal.SIGINT))
        outcomes = {combo: worker.communicate(timeout=120) for combo, worker in workers.items()}
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()

    lake = Lake.local(tmp_path / "lake")
    for (name, stage), cluster_id in configs.items():
        worker, (_, err) = workers[(name, stage)], outcomes[(name, stage)]
        if name == "SIGKILL":
            assert worker.returncode == -signal.SIGKILL
            assert stored_result(lake, cluster_id) is None  # nobody has looked yet
        else:  # the worker recorded its own end, printed it in one line, exit status 130
            assert worker.returncode == 130, err
            assert_failed_with_cause(stored_result(lake, cluster_id), name, stage)
            assert err.strip().splitlines()[0] == f"error: {INTERRUPTED_MESSAGE}" and "Traceback" not in err

    for (name, stage), cluster_id in configs.items():  # the next command touching each configuration
        assert main(["executions", "list", cluster_id, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["results"]
        assert [r["status"] for r in listed] == ["failed"], (name, stage, listed)
        assert_failed_with_cause(stored_result(lake, cluster_id), name, stage)

    from cluster_pipeline.runs import open_instance

    with open_instance() as instance:
        runs = instance.get_runs()
        assert len(runs) == len(combos) and {run.status for run in runs} == {DagsterRunStatus.FAILURE}
    assert_no_torn_file(tmp_path / "lake")
    (hold / f"{configs[('SIGKILL', 'fit')]}.hold").unlink()
    assert main(["execute", configs[("SIGKILL", "fit")], "--json"]) == 0  # nothing blocks a new execution
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


@pytest.mark.slow
def test_every_signal_at_every_stage_with_the_daemon(tmp_path, monkeypatch, capsys):
    """The daemon launches the runs (change sensor, queue, run workers); its lifecycle sensor records
    the killed ones. A CLI run killed while the daemon runs is recorded by the sensor too (item 6)."""
    home = isolated_dagster_home(tmp_path, max_concurrent_runs=20, dequeue_interval_seconds=1)
    env = environment(
        tmp_path, monkeypatch, DAGSTER_HOME=str(home), CLUSTER_PIPELINE_SENSOR_INTERVAL="2", PYTHONPATH=str(REPO)
    )
    configs = prepare(tmp_path, capsys, MATRIX, "--on-change")
    cli_config = held_config(capsys, "fit")
    hold = Path(env[HOLD_DIR_ENV])
    log_path = tmp_path / "daemon.log"
    lake = Lake.local(tmp_path / "lake")
    with running_daemon(env, log_path):
        cli_worker = subprocess.Popen(
            [sys.executable, "-m", "cluster_pipeline.cli", "execute", cli_config],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            pids = {
                combo: wait_for(
                    lambda c=cluster_id, s=combo[1]: reached(hold, c, s),
                    f"{cluster_id} reaching {combo[1]}",
                    240,
                    log_path,
                )
                for combo, cluster_id in configs.items()
            }
            wait_for(lambda: reached(hold, cli_config, "fit"), "the CLI run reaching fit", 120, log_path)
            for combo, pid in pids.items():
                os.kill(pid, SIGNALS[combo[0]])
        finally:
            cli_worker.kill()
            cli_worker.wait(timeout=30)

        for (name, stage), cluster_id in configs.items():
            result = wait_for(
                lambda c=cluster_id: stored_result(lake, c), f"a result for {name} at {stage}", 90, log_path
            )
            assert_failed_with_cause(result, name, stage)
        result = wait_for(lambda: stored_result(lake, cli_config), "the sensor recording the CLI run", 90, log_path)
        assert_failed_with_cause(result, "SIGKILL", "fit")
        listed = cli(capsys, "executions", "list", configs[("SIGKILL", "write")])["results"]
        assert [r["status"] for r in listed] == ["failed"]  # in the history, once
    assert_no_torn_file(tmp_path / "lake")


@pytest.mark.slow
def test_cancelling_a_processing_execution(tmp_path, monkeypatch, capsys):
    """A processing execution is shown with what it clusters (item 14), and a cancel stops the very
    worker and leaves one outcome: canceled, 'cancelled', with the snapshot's size and version."""
    env = environment(tmp_path, monkeypatch)
    cluster_id = prepare(tmp_path, capsys, [("cancel", "fit")])[("cancel", "fit")]
    hold = Path(env[HOLD_DIR_ENV])
    worker = subprocess.Popen(
        [sys.executable, "-m", "cluster_pipeline.cli", "execute", cluster_id, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: reached(hold, cluster_id, "fit"), "the execution reaching fit", 180)
        processing = cli(capsys, "executions", "latest", cluster_id)
        assert processing["status"] == "processing" and processing["num_points"] == DOCUMENTS
        assert processing["algorithm"] == "kmeans" and processing["collection_version"] is not None
        cancelled = cli(capsys, "executions", "cancel", processing["run_id"])
        out, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert cancelled["status"] == "canceled" and "cancelled" in cancelled["error_message"]
    assert cancelled["num_points"] == DOCUMENTS and cancelled["collection_version"] == processing["collection_version"]
    assert worker.returncode == 1 and json.loads(out) == cancelled  # the worker reports the same, single outcome
    from cluster_pipeline.runs import open_instance

    with open_instance() as instance:
        assert instance.get_run_by_id(cancelled["dagster_run_id"]).status == DagsterRunStatus.CANCELED
    assert stored_result(Lake.local(tmp_path / "lake"), cluster_id).to_json_dict() == cancelled


@pytest.mark.slow
def test_cancelling_with_the_daemon(tmp_path, monkeypatch, capsys):
    """A run the daemon launched is stopped through Dagster's run launcher (its code server), and a
    run canceled in Dagster's queue by someone else (the UI's Terminate) gets its canceled result from
    ``execution_canceled_sensor``: both end ``canceled``, 'cancelled', in the history."""
    home = isolated_dagster_home(tmp_path, dequeue_interval_seconds=1)
    env = environment(
        tmp_path, monkeypatch, DAGSTER_HOME=str(home), CLUSTER_PIPELINE_SENSOR_INTERVAL="2", PYTHONPATH=str(REPO)
    )
    cluster_id = prepare(tmp_path, capsys, [("cancel", "fit")])[("cancel", "fit")]
    hold, lake = Path(env[HOLD_DIR_ENV]), Lake.local(tmp_path / "lake")
    log_path = tmp_path / "daemon.log"
    with running_daemon(env, log_path):
        running = cli(capsys, "execute", cluster_id, "--no-wait")
        wait_for(lambda: reached(hold, cluster_id, "fit"), "the daemon's run reaching fit", 180, log_path)
        from cluster_pipeline.runs import open_instance

        with open_instance() as instance:
            partition = instance.get_run_by_id(running["dagster_run_id"]).tags["dagster/partition"]
            queued = launch_queued(tmp_path, partition, "cluster_execution")  # waits: one run per partition
            assert instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.QUEUED
            assert instance.run_coordinator.cancel_run(queued.run_id)
            cancelled = cli(capsys, "executions", "cancel", running["run_id"])
            results = ResultStore(lake)
            wait_for(lambda: len(results.list("default", cluster_id)) == 2, "both failed results", 90, log_path)
            wait_for(
                lambda: instance.get_run_by_id(running["dagster_run_id"]).is_finished, "the run ending", 60, log_path
            )
            assert instance.get_run_by_id(running["dagster_run_id"]).status == DagsterRunStatus.CANCELED
    assert cancelled["status"] == "canceled" and "cancelled" in cancelled["error_message"]
    listed = {r.dagster_run_id: r for r in ResultStore(lake).list("default", cluster_id)}
    assert listed[running["dagster_run_id"]].error_message == cancelled["error_message"]
    assert listed[queued.run_id].status == "canceled" and "cancelled" in listed[queued.run_id].error_message
