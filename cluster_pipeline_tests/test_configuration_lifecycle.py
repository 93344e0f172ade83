"""Configurations over their life through the CLI and Dagster: update (versions), delete (history kept
or removed), executions queued with --no-wait and waited for, and history queries (OR, NOT, search,
page stats). Each refused while an execution of the configuration is in flight."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from dagster import DagsterRunStatus

from cluster_pipeline.cli import main
from cluster_pipeline.lifecycle.records import run_facts
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
from cluster_pipeline.runs import open_instance
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.daemon_helpers import REPO, isolated_dagster_home, running_daemon
from cluster_pipeline_tests.test_status import queue_run, short_id


def cli(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else json.loads(err)


def configuration(capsys, tmp_path, *options: str) -> str:
    pq.write_table(blob_documents(150, centers=3), tmp_path / "docs.parquet")
    assert main(["ingest", "c", str(tmp_path / "docs.parquet")]) == 0
    capsys.readouterr()
    code, created = cli(capsys, "clusters", "create", "--collection", "c", "--param", "n_clusters=3", *options)
    assert code == 0
    return created["cluster_id"]


def test_updates_make_versions_and_every_result_keeps_the_configuration_it_ran_with(tmp_path, capsys):
    cluster_id = configuration(capsys, tmp_path)
    code, first = cli(capsys, "execute", cluster_id)
    assert code == 0 and first["configuration"]["parameters"] == {"n_clusters": 3}

    code, updated = cli(capsys, "clusters", "update", cluster_id, "--param", "n_clusters=2", "--sample-size", "100")
    assert code == 0 and updated["new_version"] and updated["changed"] == ["parameters", "sample_size"]
    assert updated["configuration"]["version"] == 2
    code, kept = cli(capsys, "clusters", "update", cluster_id, "--description", "news", "--on-change")
    assert code == 0 and not kept["new_version"] and kept["configuration"]["version"] == 2
    assert kept["changed"] == ["triggers", "description"]

    code, second = cli(capsys, "execute", cluster_id)
    assert code == 0 and second["num_clusters"] == 2 and second["configuration_version"] == 2
    assert second["configuration"]["sample_size"] == 100 and second["configuration"]["description"] == "news"
    code, shown = cli(capsys, "executions", "show", first["run_id"])
    assert shown["configuration_version"] == 1 and shown["configuration"]["parameters"] == {"n_clusters": 3}

    # changing the algorithm starts its parameters afresh; --unset-param and --set reach any field
    code, other = cli(capsys, "clusters", "update", cluster_id, "--algorithm", "birch", "--set", "sample_size=null")
    assert code == 0 and other["configuration"]["parameters"] == {} and other["configuration"]["sample_size"] is None
    code, unset = cli(
        capsys, "clusters", "update", cluster_id, "--param", "threshold=0.3", "--unset-param", "threshold"
    )
    assert code == 2 and "Nothing to change" in unset["error"]["message"]


def test_a_configuration_is_updated_executed_and_deleted_by_its_name_which_never_changes(tmp_path, capsys):
    configuration(capsys, tmp_path)
    code, created = cli(capsys, "clusters", "create", "--collection", "c", "--name", "three", "--param", "n_clusters=3")
    code, updated = cli(capsys, "clusters", "update", "three", "--param", "n_clusters=2")
    assert code == 0 and updated["configuration"]["name"] == "three" and updated["configuration"]["version"] == 2
    code, error = cli(capsys, "clusters", "update", "three", "--set", "name=other")
    assert (
        code == 2
        and "name of three cannot change (it is the configuration's Dagster partition" in (error["error"]["message"])
    )
    code, executed = cli(capsys, "execute", "three")
    assert code == 0 and executed["num_clusters"] == 2 and executed["configuration"]["name"] == "three"
    code, deleted = cli(capsys, "clusters", "delete", "three")
    assert code == 0 and deleted == {"deleted": created["cluster_id"], "history": "kept", "executions": 1}
    with open_instance() as instance:
        assert "default.three" not in instance.get_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME)
    code, listing = cli(capsys, "executions", "list", created["cluster_id"])  # the kept history, by its id
    assert code == 0 and [r["run_id"] for r in listing["results"]] == [executed["run_id"]]
    code, again = cli(capsys, "clusters", "create", "--collection", "c", "--name", "three")
    assert code == 0 and again["cluster_id"] != created["cluster_id"]  # the name is free again


def test_a_config_file_keeps_its_parameters_under_the_algorithm_it_names_on_the_command_line(tmp_path, capsys):
    configuration(capsys, tmp_path)
    (tmp_path / "birch.json").write_text(json.dumps({"parameters": {"threshold": 0.3}}))
    argv = ["clusters", "create", "--collection", "c", "--config-file", str(tmp_path / "birch.json")]
    code, created = cli(capsys, *argv, "--algorithm", "birch")
    assert code == 0 and created["algorithm"] == "birch" and created["parameters"] == {"threshold": 0.3}


def test_refused_updates_change_nothing(tmp_path, capsys):
    cluster_id = configuration(capsys, tmp_path)
    code, before = cli(capsys, "clusters", "show", cluster_id)
    for argv, message in [
        (["--set", "collection=other"], "collection of c-kmeans-k3 cannot change"),
        (["--param", "n_clusters=0"], "'n_clusters' parameter of kmeans"),
        (["--filter", '{"field": "nope", "operator": "is_null"}'], "unknown field 'nope'"),
        (["--unset-param", "k"], "has no such parameter"),
        (["--feature", "clip"], "Feature extractor 'clip' not found"),
    ]:
        code, error = cli(capsys, "clusters", "update", cluster_id, *argv)
        assert code == 2 and message in error["error"]["message"], argv
    assert cli(capsys, "clusters", "show", cluster_id)[1] == before


def test_a_configuration_with_an_execution_in_flight_is_neither_updated_nor_deleted(tmp_path, capsys):
    cluster_id = configuration(capsys, tmp_path)
    with open_instance() as instance:
        run = queue_run(instance, "default.c-kmeans-k3")  # the configuration's partition: its name
    for argv in (["update", cluster_id, "--param", "n_clusters=4"], ["delete", cluster_id]):
        code, error = cli(capsys, "clusters", *argv)
        assert code == 2 and error["error"]["type"] == "ConflictError"
        assert f"while its execution {short_id(run.run_id)} is pending" in error["error"]["message"]
        assert f"executions wait {short_id(run.run_id)}" in error["error"]["message"]
    assert cli(capsys, "clusters", "show", cluster_id)[1]["version"] == 1
    code, _ = cli(capsys, "executions", "cancel", short_id(run.run_id))
    code, updated = cli(capsys, "clusters", "update", cluster_id, "--param", "n_clusters=4")
    assert code == 0 and updated["configuration"]["version"] == 2


def test_delete_keeps_the_history_by_default_or_removes_it(tmp_path, capsys):
    kept_id = configuration(capsys, tmp_path)
    code, executed = cli(capsys, "execute", kept_id)
    code, deleted = cli(capsys, "clusters", "delete", kept_id)
    assert code == 0 and deleted == {"deleted": kept_id, "history": "kept", "executions": 1}
    with open_instance() as instance:
        partitions = instance.get_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME)
    assert f"default.{kept_id}" not in partitions
    assert cli(capsys, "clusters", "show", kept_id)[0] == 2
    code, listing = cli(capsys, "executions", "list", kept_id, "--include-total")
    assert code == 0 and [r["run_id"] for r in listing["results"]] == [executed["run_id"]] and listing["total"] == 1
    assert cli(capsys, "executions", "latest", kept_id)[1]["run_id"] == executed["run_id"]
    assert cli(capsys, "execute", kept_id)[0] == 2

    removed_id = cli(capsys, "clusters", "create", "--collection", "c")[1]["cluster_id"]
    code, executed = cli(capsys, "execute", removed_id)
    code, deleted = cli(capsys, "clusters", "delete", removed_id, "--delete-history")
    assert code == 0 and deleted == {"deleted": removed_id, "history": "deleted", "executions": 1}
    assert not list((tmp_path / "lake" / "default" / "executions" / removed_id).glob("*"))
    code, error = cli(capsys, "executions", "show", executed["run_id"])
    assert code == 2 and "not found" in error["error"]["message"]
    code, error = cli(capsys, "executions", "list", removed_id)
    assert code == 2 and "not found" in error["error"]["message"]
    assert cli(capsys, "executions", "list", kept_id)[0] == 0  # the other configuration's history is untouched


def test_no_wait_queues_the_execution_and_wait_gives_up_after_its_timeout(tmp_path, capsys):
    """Without a daemon the queued run stays pending: --no-wait says so, `wait --timeout` returns 124."""
    cluster_id = configuration(capsys, tmp_path)
    code = main(["execute", cluster_id, "--no-wait", "--json"])
    out, err = capsys.readouterr()
    pending = json.loads(out)
    assert code == 0 and pending["status"] == "pending" and pending["run_id"].startswith("run_")
    assert "no Dagster daemon" in json.loads(err)["warning"]
    with open_instance() as instance:
        run = instance.get_run_by_id(pending["dagster_run_id"])
    assert run.status == DagsterRunStatus.QUEUED and run.remote_job_origin.location_name == "cluster_pipeline"
    assert run.job_name == "cluster_execution" and "worker" not in run_facts(instance, run.run_id)
    code, error = cli(capsys, "execute", cluster_id, "--no-wait")
    assert code == 2 and f"already pending ({pending['run_id']})" in error["error"]["message"]

    code = main(["executions", "wait", pending["run_id"], "--timeout", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 124 and json.loads(out)["status"] == "pending"
    assert json.loads(err)["error"]["message"].startswith(f"Execution {pending['run_id']} is still pending after 1 s")
    cli(capsys, "executions", "cancel", pending["run_id"])
    code, done = cli(capsys, "executions", "wait", pending["run_id"])  # ended: answers at once
    assert code == 1 and done["status"] == "canceled" and "cancelled" in done["error_message"]


def test_history_queries_with_or_not_search_and_page_stats(tmp_path, capsys):
    cluster_id = configuration(capsys, tmp_path)
    runs = [cli(capsys, "execute", cluster_id)[1]]
    cli(capsys, "clusters", "update", cluster_id, "--param", "n_clusters=2")
    runs.append(cli(capsys, "execute", cluster_id)[1])
    cli(capsys, "clusters", "update", cluster_id, "--param", "n_clusters=500")  # more clusters than documents
    failed = cli(capsys, "execute", cluster_id)[1]
    assert failed["status"] == "failed"

    either = {
        "OR": [
            {"field": "status", "operator": "=", "value": "failed"},
            {"field": "configuration_version", "operator": "=", "value": 1},
        ]
    }
    code, listing = cli(capsys, "executions", "list", cluster_id, "--filter", json.dumps(either), "--include-total")
    assert code == 0 and [r["run_id"] for r in listing["results"]] == [failed["run_id"], runs[0]["run_id"]]
    assert listing["total"] == 2 and listing["stats"]["by_status"] == {"completed": 1, "failed": 1}
    assert listing["stats"]["mean_silhouette"] == round(runs[0]["metrics"]["silhouette_score"], 6)

    not_two = json.dumps({"NOT": {"field": "num_clusters", "operator": "=", "value": 2}})
    code, listing = cli(capsys, "executions", "list", cluster_id, "--filter", not_two, "--status", "completed")
    assert [r["run_id"] for r in listing["results"]] == [runs[0]["run_id"]]

    label = runs[1]["centroids"][0]["label"].split(" / ")[0].upper()
    code, listing = cli(capsys, "executions", "list", cluster_id, "--search", label)
    assert {r["run_id"] for r in listing["results"]} >= {runs[1]["run_id"]} and failed["run_id"] not in {
        r["run_id"] for r in listing["results"]
    }
    code, listing = cli(capsys, "executions", "list", cluster_id, "--search", "larger than the number")
    assert [r["run_id"] for r in listing["results"]] == [failed["run_id"]]

    assert main(["executions", "list", cluster_id, "--include-total"]) == 0
    text = capsys.readouterr().out
    mean = (runs[0]["metrics"]["silhouette_score"] + runs[1]["metrics"]["silhouette_score"]) / 2
    assert f"3 in total: 2 completed, 1 failed; mean silhouette {mean:.3f} (over 2)" in text
    code, error = cli(
        capsys, "executions", "list", cluster_id, "--filter", '{"field": "colour", "operator": "is_null"}'
    )
    assert code == 2 and "unknown field 'colour'" in error["error"]["message"]


@pytest.mark.slow
def test_the_daemon_runs_a_no_wait_execution_and_wait_returns_its_result(tmp_path):
    """`execute --no-wait` from the CLI, the real `dagster-daemon` on the repository's workspace
    (location `cluster_pipeline`) dequeues and runs it, `executions wait` returns the result."""
    home = isolated_dagster_home(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTER_PIPELINE_ROOT": str(tmp_path / "lake"),
           "PYTHONPATH": str(REPO)}  # fmt: skip

    def run_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cluster_pipeline.cli", *args, "--json"], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    pq.write_table(blob_documents(120, centers=3), tmp_path / "docs.parquet")
    assert run_cli("ingest", "news", str(tmp_path / "docs.parquet")).returncode == 0
    created = run_cli("clusters", "create", "--collection", "news", "--param", "n_clusters=3")
    cluster_id = json.loads(created.stdout)["cluster_id"]
    log = tmp_path / "daemon.log"
    with running_daemon(env, log):
        submitted = run_cli("execute", cluster_id, "--no-wait")
        pending = json.loads(submitted.stdout)
        # queued, or already started: the daemon dequeues every second and a run worker starts in about two
        assert submitted.returncode == 0 and pending["status"] in ("pending", "processing"), submitted.stdout
        waited = run_cli("executions", "wait", pending["run_id"], "--timeout", "240")
        assert waited.returncode == 0, waited.stderr + log.read_text()[-3000:]
    result = json.loads(waited.stdout)
    assert result["run_id"] == pending["run_id"] and result["status"] == "completed" and result["num_clusters"] == 3
