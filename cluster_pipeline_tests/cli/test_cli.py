"""The CLI, in process (fast) and once as the installed console script."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.cli import main
from cluster_pipeline_tests import openai_server as fake
from cluster_pipeline_tests.conftest import blob_documents


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.parquet"
    pq.write_table(blob_documents(150, centers=3), path)
    return path


def test_ingest_create_execute_show(capsys, docs_file, tmp_path):
    code, out, _ = run_cli(capsys, "ingest", "news", str(docs_file), "--json")
    assert code == 0 and json.loads(out)["total_documents"] == 150

    code, out, _ = run_cli(capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--json")
    cluster_id = json.loads(out)["cluster_id"]
    assert code == 0 and cluster_id.startswith("clust_")

    code, out, _ = run_cli(capsys, "clusters", "list")
    assert cluster_id in out

    code, out, _ = run_cli(capsys, "execute", cluster_id, "--json")
    result = json.loads(out)
    assert code == 0 and result["status"] == "completed" and result["num_clusters"] == 3
    assert result["created_at"].endswith("Z")
    assert (tmp_path / "lake" / "dagster_home").is_dir()  # the default instance lives in the data root

    code, out, _ = run_cli(capsys, "executions", "show", result["run_id"])
    assert code == 0 and result["run_id"] in out and "silhouette" in out and "keywords" in out

    code, out, _ = run_cli(capsys, "executions", "list", cluster_id, "--json")
    assert [r["run_id"] for r in json.loads(out)["results"]] == [result["run_id"]]

    code, out, _ = run_cli(capsys, "executions", "labels", result["run_id"], "cl_0=Rockets", "--json")
    assert code == 0 and json.loads(out)["label_overrides"] == {"cl_0": "Rockets"}
    code, out, _ = run_cli(capsys, "executions", "name", result["run_id"], "baseline", "--json")
    assert code == 0 and json.loads(out)["run_name"] == "baseline"
    code, out, _ = run_cli(capsys, "executions", "show", result["run_id"])
    assert code == 0 and "Rockets" in out


def test_api_keys_are_printed_once_listed_without_their_secret_and_revoked(capsys):
    code, out, _ = run_cli(capsys, "api-keys", "create", "--namespace", "team-a", "--read-only", "--json")
    created = json.loads(out)
    assert code == 0 and created["api_key"].startswith("sk_") and created["grants"] == {"team-a": "read"}
    code, out, _ = run_cli(capsys, "api-keys", "list")
    assert code == 0 and created["key_id"] in out and "team-a:read" in out and created["api_key"] not in out
    assert run_cli(capsys, "api-keys", "revoke", created["key_id"])[0] == 0
    code, out, _ = run_cli(capsys, "api-keys", "list", "--json")
    assert json.loads(out)[0]["revoked_at"] is not None
    code, _, err = run_cli(capsys, "api-keys", "revoke", "nokey000")
    assert code == 2 and "api-keys list" in err


def test_configurations_are_named_and_found_by_name_or_id(capsys, docs_file):
    run_cli(capsys, "ingest", "news", str(docs_file))
    code, out, _ = run_cli(capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3")
    assert (
        code == 0
        and out.startswith("Created news-kmeans-k3 (clust_")
        and "cluster-pipeline execute news-kmeans-k3" in out
    )
    code, out, _ = run_cli(capsys, "clusters", "create", "--collection", "news", "--name", "weekly", "--json")
    weekly = json.loads(out)
    assert code == 0 and weekly["name"] == "weekly"
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--name", "weekly")
    assert code == 2 and "A configuration named 'weekly' exists already" in err and weekly["cluster_id"] in err
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--name", "Weekly News")
    assert code == 2 and "Invalid configuration name 'Weekly News'" in err
    code, out, _ = run_cli(capsys, "clusters", "list")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["news-kmeans-k3", "weekly"]  # under the header
    for reference in ("weekly", weekly["cluster_id"]):
        code, out, _ = run_cli(capsys, "clusters", "show", reference, "--json")
        assert code == 0 and json.loads(out)["cluster_id"] == weekly["cluster_id"]
    code, out, _ = run_cli(capsys, "execute", "weekly", "--json")
    assert code == 0 and json.loads(out)["cluster_id"] == weekly["cluster_id"]
    code, out, _ = run_cli(capsys, "executions", "latest", "weekly", "--json")
    assert code == 0 and json.loads(out)["cluster_id"] == weekly["cluster_id"]
    code, _, err = run_cli(capsys, "execute", "monthly")
    assert code == 2 and "No cluster configuration named 'monthly' in namespace 'default'" in err


def test_errors_are_one_clear_line(capsys, docs_file):
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "missing")
    assert code == 2 and err.startswith("error: Collection 'missing' not found") and "Traceback" not in err
    run_cli(capsys, "ingest", "news", str(docs_file))
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--param", "k=3")
    assert code == 2 and "unknown parameter(s) k for kmeans" in err
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--feature", "clip")
    assert code == 2 and "Feature extractor 'clip' not found" in err
    code, _, err = run_cli(capsys, "executions", "show", "run_../../etc")
    assert code == 2 and "Invalid run id" in err
    code, _, err = run_cli(capsys, "ingest", "news", str(docs_file))
    assert code == 2 and "Duplicate document_id 'd0'" in err
    bad = docs_file.with_name("bad.json")
    bad.write_text("{not json")
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--config-file", str(bad))
    assert code == 2 and "is not valid JSON" in err
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--config-file", "/nonexistent.json")
    assert code == 2 and err.startswith("error: No such file or directory: /nonexistent.json")
    code, _, err = run_cli(capsys, "delete", "news", "--ids-file", "/nonexistent.txt")
    assert code == 2 and "Traceback" not in err


def test_failed_execution_exits_non_zero_with_its_result(capsys, tmp_path):
    pq.write_table(blob_documents(1), tmp_path / "one.parquet")
    run_cli(capsys, "ingest", "tiny", str(tmp_path / "one.parquet"))
    _, out, _ = run_cli(capsys, "clusters", "create", "--collection", "tiny", "--json")
    code, out, _ = run_cli(capsys, "execute", json.loads(out)["cluster_id"], "--json")
    result = json.loads(out)
    assert code == 1 and result["status"] == "failed"
    assert result["error_message"].startswith("Insufficient documents for clustering: need at least 2 documents")
    # the snapshot was taken before the failure: the failed result says what it clustered (issue 12, item 14)
    assert result["num_points"] == 1 and result["collection_version"] is not None


def test_namespaces_do_not_see_each_other(capsys, docs_file):
    run_cli(capsys, "ingest", "news", str(docs_file), "--namespace", "team-a")
    code, _, err = run_cli(capsys, "clusters", "create", "--collection", "news", "--namespace", "team-b")
    assert code == 2 and "not found in namespace 'team-b'" in err


@pytest.mark.slow
def test_console_script_demo(tmp_path):
    """The installed entry point runs the demo end to end, as the README's quickstart does."""
    script = shutil.which("cluster-pipeline", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "cluster_pipeline.cli"]
    env = {**os.environ, "CLUSTER_PIPELINE_ROOT": str(tmp_path / "data")}
    done = subprocess.run([*command, "demo", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["num_clusters"] == 6 and result["num_points"] == 3000
    labels = " ".join(c["label"].lower() + " " + " ".join(c["keywords"]) for c in result["centroids"])
    assert "rocket" in labels or "orbit" in labels or "launch" in labels
    assert list((tmp_path / "data").rglob(f"{result['run_id']}.parquet"))


def test_webhooks_to_private_addresses_are_refused_by_every_way_in(capsys, docs_file, monkeypatch):
    """Issue 26, item 1: create, --config-file and --set accepted a cloud metadata service's address."""
    monkeypatch.delenv("CLUSTER_PIPELINE_WEBHOOK_HOSTS", raising=False)
    run_cli(capsys, "ingest", "news", str(docs_file))
    config_file = docs_file.with_name("config.json")
    config_file.write_text(json.dumps({"webhooks": ["http://169.254.169.254/latest/meta-data/"]}))
    attempts = (
        ["clusters", "create", "--collection", "news", "--config-file", str(config_file)],
        ["clusters", "create", "--collection", "news", "--set", 'webhooks=["http://user:pass@[::1]:9/x"]'],
    )
    for argv in attempts:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: Webhook"), err
    assert run_cli(capsys, "clusters", "create", "--collection", "news", "--name", "k3")[0] == 0
    code, _, err = run_cli(capsys, "clusters", "update", "k3", "--set", 'webhooks=["http://10.0.0.1:8080/x"]')
    assert code == 2 and "10.0.0.1, which is not a public address" in err
    code, out, _ = run_cli(capsys, "clusters", "list", "--json")
    assert code == 0 and [c["webhooks"] for c in json.loads(out)] == [[]]


def test_a_deeply_nested_filter_is_one_line_with_exit_status_2(capsys, docs_file):
    """Issue 26, item 5: 300 NOTs ended `clusters create` in a pydantic traceback; 5,000 ended `create`
    and `executions list --filter` in RecursionError."""
    run_cli(capsys, "ingest", "news", str(docs_file))
    assert run_cli(capsys, "clusters", "create", "--collection", "news", "--name", "k3")[0] == 0
    condition = '{"field": "category", "operator": "eq", "value": "World"}'
    for levels in (300, 5000):
        deep = '{"NOT": ' * levels + condition + "}" * levels
        for argv in (["clusters", "create", "--collection", "news", "--filter", deep],
                     ["executions", "list", "k3", "--filter", deep]):  # fmt: skip
            code, _, err = run_cli(capsys, *argv)
            assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "nests" in err, err


def test_a_corrupt_part_is_one_line_naming_it_for_every_command_that_reads_it(capsys, docs_file, tmp_path):
    """Issue 26, item 4: `ingest` and `collections export` ended in a traceback with exit status 1 (also
    under --json); `execute` failed with "ArrowInvalid: Parquet magic bytes not found", naming no file."""
    run_cli(capsys, "ingest", "news", str(docs_file))
    run_cli(capsys, "clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--name", "k3")
    (part,) = (tmp_path / "lake" / "default" / "collections" / "news" / "parts").glob("*.parquet")
    part.write_bytes(part.read_bytes()[:100])
    more = tmp_path / "more.parquet"
    pq.write_table(blob_documents(10, id_offset=1000), more)
    for argv in (["ingest", "news", str(more)], ["collections", "export", "news", "-o", str(tmp_path / "out.parquet")]):
        for json_flag in ([], ["--json"]):
            code, _, err = run_cli(capsys, *argv, *json_flag)
            assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
            assert str(part) in (json.loads(err)["error"]["message"] if json_flag else err), err
    code, out, _ = run_cli(capsys, "execute", "k3", "--json")
    assert code == 1 and str(part) in json.loads(out)["error_message"]
    assert "restore that file" in json.loads(out)["error_message"]


def test_ingest_embeds_text_columns(capsys, tmp_path, monkeypatch):
    path = tmp_path / "texts.jsonl"
    texts = blob_documents(20).drop_columns(["embedding"]).to_pandas()
    texts.to_json(path, orient="records", lines=True)
    with fake.FakeOpenAIServer() as server:
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_MODEL", "test-embed")
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_BASE_URL", server.url)
        code, out, _ = run_cli(capsys, "ingest", "texts", str(path), "--embed", "group,text", "--json")
        assert code == 0 and json.loads(out)["features"] == {"embedding": 32}
        assert server.requests[0].body["input"][0] == f"{texts.group[0]}\n{texts.text[0]}"  # one line each
        code, _, err = run_cli(capsys, "ingest", "texts", str(path), "--embed", "body")
    assert code == 2 and err.startswith("error: No column 'body' to embed") and "Traceback" not in err
