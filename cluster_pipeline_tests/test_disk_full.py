"""A data root on a full disk (a real tmpfs, filled up): every command that must write fails in one line
naming the cause and the folder, nothing half-written is left, every listing and ``show`` goes on
working, and once there is room again everything does (issue 26, item 2). The Dagster instance keeps its
own folder (``DAGSTER_HOME``) off that disk: the runs' storage is Dagster's."""

import json

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from cluster_pipeline.cli import main
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.test_status import dead_worker, short_id, started_run


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_a_full_disk_fails_in_one_line_and_loses_nothing(disk, tmp_path, monkeypatch, capsys):
    root = disk.path / "lake"
    monkeypatch.setenv("CLUSTER_PIPELINE_ROOT", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    for name, documents in (("first", blob_documents(150)), ("more", blob_documents(50, id_offset=1000))):
        pq.write_table(documents, tmp_path / f"{name}.parquet")
    assert cli(capsys, "ingest", "news", str(tmp_path / "first.parquet"))[0] == 0
    assert cli(capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--name", "k3")[0] == 0
    code, out, _ = cli(capsys, "execute", "k3", "--json")
    first = json.loads(out)["run_id"]
    cluster_id = json.loads(cli(capsys, "clusters", "show", "k3", "--json")[1])["cluster_id"]

    disk.fill()
    before = tree(root)
    for argv in (["ingest", "news", str(tmp_path / "more.parquet")], ["execute", "k3"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert err.startswith(f"error: Cannot write to {root}/") and "No space left on device" in err, (argv, err)
        assert "free space on that file system" in err
    code, _, err = cli(capsys, "ingest", "news", str(tmp_path / "more.parquet"), "--json")
    assert code == 2 and json.loads(err)["error"]["type"] == "StorageError"
    assert tree(root) == before or set(tree(root)) - set(before) <= {
        name for name in tree(root) if name.endswith(".png")
    }  # pictures of the failed execution that fitted, beside no result
    assert not [name for name in tree(root) if name.endswith(".tmp")]

    with DagsterInstance.get() as instance:  # a run whose worker died: its failed result waits for room
        orphan = started_run(instance, cluster_id, dead_worker())
    code, out, err = cli(capsys, "executions", "list", "k3", "--json")
    assert code == 0 and {r["run_id"]: r["status"] for r in json.loads(out)["results"]}[short_id(orphan.run_id)] == (
        "processing"
    )
    for argv in (["executions", "show", first], ["clusters", "list"], ["collections", "export", "news", "-o",
                 str(tmp_path / "export.parquet")]):  # fmt: skip
        code, out, err = cli(capsys, *argv)
        assert code == 0, (argv, err)

    disk.free()
    code, out, _ = cli(capsys, "executions", "list", "k3", "--json")
    statuses = {r["run_id"]: r["status"] for r in json.loads(out)["results"]}
    assert statuses[first] == "completed" and statuses[short_id(orphan.run_id)] == "failed"
    assert cli(capsys, "ingest", "news", str(tmp_path / "more.parquet"))[0] == 0
    code, out, _ = cli(capsys, "execute", "k3", "--json")
    assert code == 0 and json.loads(out)["num_points"] == 200
