"""The CLI under hostile but realistic use (issue 12): shared options in any position, one-line errors
(JSON under --json), quiet failed executions, closed pipes, bad numbers and paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.cli import main
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline_tests.conftest import blob_documents


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_process(*argv: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cluster_pipeline.cli", *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
        **options,
    )


@pytest.fixture
def docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.parquet"
    pq.write_table(blob_documents(30, centers=3), path)
    return path


def live_ids(root: Path, namespace: str) -> set[str]:
    store = CollectionStore(Lake.local(root))
    return set(store.load_documents(store.snapshot(namespace, "good"), columns=[])["document_id"])


def test_shared_options_work_before_and_after_the_command(capsys, docs_file, tmp_path):
    """Item 1: `--namespace nsA delete good g0` deleted from default/good; `--root X ingest` wrote into
    ./.cluster_data; `--json clusters list` printed text."""
    lake_root = tmp_path / "lake"
    assert run_cli(capsys, "ingest", "good", str(docs_file))[0] == 0
    assert run_cli(capsys, "--namespace", "nsA", "ingest", "good", str(docs_file))[0] == 0
    code, out, _ = run_cli(capsys, "--namespace", "nsA", "delete", "good", "d0")
    assert code == 0 and "nsA/good" in out
    assert "d0" in live_ids(lake_root, "default") and "d0" not in live_ids(lake_root, "nsA")

    other_root = tmp_path / "elsewhere"
    assert run_cli(capsys, "--root", str(other_root), "ingest", "good", str(docs_file))[0] == 0
    assert live_ids(other_root, "default") == {f"d{i}" for i in range(30)}
    assert run_cli(capsys, "ingest", "good2", str(docs_file), "--root", str(other_root))[0] == 0
    assert (other_root / "default" / "collections" / "good2").is_dir()

    run_cli(capsys, "clusters", "create", "--collection", "good")
    code, out, _ = run_cli(capsys, "--json", "clusters", "list")
    assert code == 0 and json.loads(out)[0]["collection"] == "good"
    code, out, _ = run_cli(capsys, "clusters", "--json", "list", "--namespace", "nsA")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run_cli(capsys, "--namespace", "nsA", "clusters", "list", "--namespace", "default")
    assert code == 0 and "good" in out  # the last one given wins


def test_help_says_where_shared_options_go(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "may be given before or after the command" in out and "--namespace" in out
    code, out, _ = run_cli(capsys, "executions", "list", "--help")
    assert code == 0 and "--namespace" in out and "--status" in out


def test_errors_are_one_line_and_json_under_json(capsys, docs_file):
    """Item 12: errors under --json were plain text."""
    code, out, err = run_cli(capsys, "--json", "clusters", "show", "clust_0000000000missing")
    assert code == 2 and out == ""
    error = json.loads(err)["error"]
    assert error["type"] == "NotFoundError" and "not found in namespace 'default'" in error["message"]
    code, _, err = run_cli(capsys, "executions", "list", "clust_0000000000missing", "--limit", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: Invalid value for '--limit'")
    code, _, err = run_cli(capsys, "ingest", "good", str(docs_file), "--bogus", "--json")
    assert code == 2 and "No such option '--bogus'" in json.loads(err)["error"]["message"]


@pytest.mark.parametrize("documents", ["0", "-5"])
def test_demo_refuses_impossible_sizes_in_one_line(capsys, documents):
    """Item 13: `demo --documents 0` / `-5` ended in tracebacks."""
    code, _, err = run_cli(capsys, "demo", "--documents", documents)
    assert code == 2 and "Traceback" not in err and "--documents" in err and len(err.strip().splitlines()) == 1


def test_the_dagster_instance_folder_is_refused_as_a_namespace(capsys, docs_file, tmp_path):
    code, _, err = run_cli(capsys, "ingest", "good", str(docs_file), "--namespace", "dagster_home")
    assert code == 2 and "reserved" in err
    assert not (tmp_path / "lake" / "dagster_home" / "collections").exists()


def test_report_into_a_folder_and_unreadable_files_in_listings(capsys, docs_file, tmp_path):
    """Item 13: `report --output some_dir/` failed naming a temp file and left it behind; a 0-byte result
    or a broken configuration JSON made listings fail with a traceback."""
    run_cli(capsys, "ingest", "good", str(docs_file))
    _, out, _ = run_cli(capsys, "clusters", "create", "--collection", "good", "--param", "n_clusters=3", "--json")
    cluster_id = json.loads(out)["cluster_id"]
    _, out, _ = run_cli(capsys, "execute", cluster_id, "--json")
    run_id = json.loads(out)["run_id"]

    folder = tmp_path / "reports"
    folder.mkdir()
    code, out, _ = run_cli(capsys, "executions", "report", run_id, "--output", f"{folder}/")
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == [f"{run_id}.html"]
    # issue 26, item 9: an existing file was replaced without a word
    (folder / f"{run_id}.html").write_text("mine")
    code, _, err = run_cli(capsys, "executions", "report", run_id, "--output", str(folder / f"{run_id}.html"))
    assert code == 2 and err.count("\n") == 1 and "exists already; pass --force" in err
    assert [(p.name, p.read_text()) for p in folder.iterdir()] == [(f"{run_id}.html", "mine")]
    assert run_cli(capsys, "executions", "report", run_id, "--output", f"{folder}/", "--force")[0] == 0
    assert "<html" in (folder / f"{run_id}.html").read_text() and len(list(folder.iterdir())) == 1

    executions = tmp_path / "lake" / "default" / "executions" / cluster_id
    (executions / "run_00000000000000ff.parquet").write_bytes(b"")
    code, out, err = run_cli(capsys, "executions", "list", cluster_id, "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)["results"]] == [run_id]
    assert "run_00000000000000ff.parquet" in err and "Traceback" not in err

    (tmp_path / "lake" / "default" / "clusters" / "clust_0000000000broken.json").write_text("{")
    code, out, err = run_cli(capsys, "clusters", "list")
    assert code == 0 and cluster_id in out and err.startswith("warning: skipped") and "clust_0000000000broken" in err


def test_latest_with_a_status_says_what_exists(capsys, docs_file):
    """Item 14: `executions latest --status failed` said 'No executions yet' when completed ones existed."""
    run_cli(capsys, "ingest", "good", str(docs_file))
    _, out, _ = run_cli(capsys, "clusters", "create", "--collection", "good", "--param", "n_clusters=3", "--json")
    cluster_id = json.loads(out)["cluster_id"]
    run_cli(capsys, "execute", cluster_id)
    code, _, err = run_cli(capsys, "executions", "latest", cluster_id, "--status", "failed")
    assert code == 2 and "No failed executions" in err and "1 in other statuses" in err


@pytest.mark.slow
def test_a_failed_execution_prints_one_error_and_a_pointer_to_the_logs(docs_file):
    """Item 12: every failed `execute` printed 69-171 lines of Dagster logs and stack traces."""
    assert cli_process("ingest", "good", str(docs_file)).returncode == 0
    created = cli_process("clusters", "create", "--collection", "good", "--param", "n_clusters=50", "--json")
    cluster_id = json.loads(created.stdout)["cluster_id"]

    done = cli_process("execute", cluster_id)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 3 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: Clustering algorithm failed: n_clusters=50 is larger than the number")
    assert "Dagster run" in done.stderr and "failed" in done.stdout

    done = cli_process("execute", cluster_id, "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["status"] == "failed"
    assert json.loads(done.stderr)["error"]["message"].startswith("Clustering algorithm failed")

    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "cluster_pipeline.cli", "executions", "list", cluster_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    reader_gone.stdout.close()  # like `| head` that has read enough
    stderr = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=120) == 0 and stderr == ""


def test_reduction_automatic_k_and_topic_options_at_create(capsys, docs_file):
    """Issue 9: --param n_clusters=auto, --reduction, --pca, --max-clusters, --reassign-noise."""
    assert run_cli(capsys, "ingest", "good", str(docs_file))[0] == 0

    def create(*options: str) -> dict:
        code, out, err = run_cli(capsys, "--json", "clusters", "create", "--collection", "good", *options)
        assert code == 0, err
        return json.loads(out)

    auto = create("--param", "n_clusters=auto", "--param", "k_max=5")
    assert auto["parameters"] == {"n_clusters": "auto", "k_max": 5}
    topics = create("--algorithm", "hdbscan", "--reduction", "umap", "--max-clusters", "3", "--reassign-noise")
    assert topics["reduction"]["method"] == "umap" and topics["max_clusters"] == 3 and topics["reassign_noise"]
    pca = create("--algorithm", "hdbscan", "--pca", "8")["reduction"]
    assert (pca["method"], pca["n_components"]) == ("pca", 8)
    assert create("--algorithm", "hdbscan", "--pca", "0")["reduction"]["method"] == "none"
    code, _, err = run_cli(
        capsys, "clusters", "create", "--collection", "good", "--algorithm", "birch", "--param", "n_clusters=auto"
    )
    assert code != 0 and "n_clusters='auto' is not available for birch" in err and len(err.strip().splitlines()) == 1


def test_configuration_options_are_generated_from_the_model(capsys, docs_file):
    """Issue 21: create/update declared twenty configuration fields a second time. Now every field with a
    plain value has an option with the field's help, choices and bounds; the others go through --set."""
    from cluster_pipeline.core.config.model import ClusterConfig

    code, out, _ = run_cli(capsys, "clusters", "create", "--help")
    assert code == 0 and "[auto|faiss|sklearn]" in out and "--reassign-noise / --keep-noise" in out
    assert " ".join(ClusterConfig.model_fields["max_fit_seconds"].description.split()[:4]) in " ".join(out.split())
    assert run_cli(capsys, "ingest", "good", str(docs_file))[0] == 0
    code, out, err = run_cli(capsys, "--json", "clusters", "create", "--collection", "good", "--plot-projection",
                             "umap", "--memory-budget-mb", "128", "--no-normalize", "--keep-noise", "--schedule",
                             "nightly", "--reduction", "pca", "--set", "labeling.num_keywords=5")  # fmt: skip
    created = json.loads(out)
    assert code == 0, err
    assert (created["plot_projection"], created["memory_budget_mb"], created["reassign_noise"]) == ("umap", 128, False)
    assert created["preprocessing"]["normalize"] is False and created["reduction"]["method"] == "pca"
    assert created["triggers"]["schedule"] == "nightly" and created["labeling"]["num_keywords"] == 5
    code, out, _ = run_cli(capsys, "--json", "clusters", "update", created["name"], "--schedule", "")
    assert code == 0 and json.loads(out)["configuration"]["triggers"]["schedule"] is None
    code, _, err = run_cli(capsys, "clusters", "update", created["name"], "--memory-budget-mb", "10")
    assert code == 2 and "Invalid value for '--memory-budget-mb': 10 is not in the range x>=64" in err
    code, _, err = run_cli(capsys, "clusters", "update", created["name"], "--collection", "other")
    assert code == 2 and "No such option '--collection'" in err


@pytest.mark.parametrize("argv", [["--help"], ["clusters", "--help"], ["executions", "list", "--help"]])
def test_help_imports_neither_dagster_nor_the_service(argv):
    """`--help` stays quick: the service, the configuration model and Dagster are imported by the commands
    that use them (create/update build their options from the model when asked)."""
    heavy = ("dagster", "cluster_pipeline.service", "cluster_pipeline.core.config.model")
    script = f"import sys; from cluster_pipeline.cli import main; main({argv!r}); print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_fits_80_columns_and_every_option_says_what_it_takes():
    """Each command's `--help` at 80 columns: no line wider, every option explained (long lists of
    choices in the text), every command of a group listed and named in its description."""
    import click
    from click.testing import CliRunner

    from cluster_pipeline.cli.app import cli

    for path, command in _commands(cli):
        shown = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80).output
        assert max(map(len, shown.splitlines())) <= 80, (path, shown)
        options = [p for p in command.get_params(click.Context(command)) if isinstance(p, click.Option)]
        assert [o.name for o in options if not o.help] == [], path
        if isinstance(command, click.Group) and path:  # a group's description names its commands
            described = command.help or ""
            assert all(name in described for name in command.commands), (path, described)
    shown = CliRunner().invoke(cli, ["clusters", "create", "--help"], terminal_width=80).output
    assert "kmeans, minibatch_kmeans" in shown and "independent" not in shown


def test_an_unknown_configuration_name_gets_did_you_mean(capsys, docs_file):
    assert run_cli(capsys, "ingest", "good", str(docs_file))[0] == 0
    assert run_cli(capsys, "clusters", "create", "--collection", "good", "--name", "weekly-news")[0] == 0
    code, _, err = run_cli(capsys, "execute", "weekly-nwes")
    assert code == 2 and "did you mean 'weekly-news'?" in err
    code, _, err = run_cli(capsys, "execute", "something-else")
    assert code == 2 and "did you mean" not in err
