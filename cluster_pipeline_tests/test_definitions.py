import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

from cluster_pipeline.definitions import build_definitions, defs
from cluster_pipeline.resources import EmbeddingResource
from cluster_pipeline_tests.openai_server import FakeOpenAIServer


def test_definitions_load():
    job = defs.resolve_job_def("cluster_execution")
    assert job.partitions_def is not None
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "collection_embeddings",
        "cluster_assignments",
        "cluster_quality",
        "cluster_labels",
        "execution_result",
    } <= keys


def test_the_code_location_loads_without_the_stages_libraries():
    """Every run worker the UI, sensors and schedules start imports the code location before its run
    starts: the clustering, labelling, metrics and picture libraries come with the step that uses them."""
    heavy = ("scipy", "sklearn", "faiss", "pandas", "matplotlib", "umap", "numba", "hdbscan", "openai", "fastapi")
    script = f"import sys, cluster_pipeline.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_s3_deployment_is_a_resource_choice(monkeypatch):
    monkeypatch.setenv("CLUSTER_PIPELINE_S3_BUCKET", "bucket")
    s3_defs = build_definitions("s3")
    assert s3_defs.resolve_job_def("cluster_execution") is not None


def test_every_run_executes_in_process():
    """UI materializations (the implicit asset job), sensors and schedules run like the CLI: no step processes."""
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
    assert defs.resolve_job_def("cluster_execution").executor_def.name == "in_process"


def test_only_dagsters_public_api_is_used():
    """Nothing imports or names Dagster's private modules (``dagster._…``): not the package, not the
    instance settings the repository and deploy/ ship (Dagster documents ``dagster.core…`` for those)."""
    repo = Path(__file__).resolve().parents[1]
    files = [*(repo / "cluster_pipeline").rglob("*.py"), repo / "dagster.yaml", *(repo / "deploy").rglob("*.yaml")]
    offenders = [str(path.relative_to(repo)) for path in files if re.search(r"dagster\._", path.read_text())]
    assert offenders == []


def test_the_repositorys_instance_keeps_each_runs_output_in_the_data_folder(tmp_path, monkeypatch):
    """`dg dev` / `dagster dev` from the repository root: a step's stdout lands under .cluster_data (the
    UI's Logs tab reads it there), not in the temporary folder those commands make and remove."""
    import shutil

    import dagster as dg

    @dg.asset
    def talkative() -> None:
        print("a line from the step")

    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert dg.materialize([talkative], instance=instance).success
    logs = [path for path in (tmp_path / ".cluster_data" / "dagster_home").rglob("*.out")]
    assert any("a line from the step" in path.read_text() for path in logs)


def test_the_embeddings_resource_follows_the_environment(monkeypatch):
    """An asset of one's own embeds text through the Definitions' resource (the endpoint an EnvVar)."""

    @dg.asset
    def embedded(embeddings: EmbeddingResource) -> list[int]:
        return list(embeddings.embedder().embed(["rocket launch", "pasta oven"]).shape)

    with FakeOpenAIServer() as server:
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_MODEL", "test-embed")
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_BASE_URL", server.url)
        resource = build_definitions().resources["embeddings"]
        assert (resource.provider, resource.model) == ("openai", "test-embed")
        result = dg.materialize([embedded], resources={"embeddings": resource}, instance=dg.DagsterInstance.ephemeral())
    assert result.output_for_node("embedded") == [2, 32]
    assert server.requests[0].body["model"] == "test-embed"
