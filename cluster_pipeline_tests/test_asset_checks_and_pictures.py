"""What the Dagster UI shows for an execution: pictures in the metadata and asset checks."""

from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from cluster_pipeline.cli import main
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _checks(outcome):
    return {evaluation.check_name: evaluation for evaluation in outcome.get_asset_check_evaluations()}


def test_pictures_are_written_and_shown_inline(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    outcome, result = materialize_config(lake, config, instance)
    for name in ("projection", "sizes"):
        path = Path(result.artifacts[name])
        assert path.name == f"{result.run_id}.{name}.png" and path.read_bytes()[:4] == b"\x89PNG"
        assert 1_000 < path.stat().st_size < 500_000  # palette PNGs: a few kB for a small chart
    materialization = next(
        e.event_specific_data.materialization
        for e in outcome.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "execution_result"
    )
    summary = materialization.metadata["summary"].value
    assert "![projection](data:image/png;base64," in summary and "![sizes](data:image/png;base64," in summary
    assert "| clusters | 3 |" in summary and "| algorithm | kmeans" in summary
    assert materialization.metadata["projection_png"].value == result.artifacts["projection"]


def test_checks_pass_by_default(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    outcome, _ = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}), instance)
    checks = _checks(outcome)
    assert set(checks) == {
        "silhouette_threshold",
        "davies_bouldin_threshold",
        "largest_cluster_fraction",
        "noise_fraction",
        "ari_vs_previous",
    }
    assert all(c.passed for c in checks.values())


def test_checks_fail_with_warn_or_error_severity(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    strict = {"min_silhouette": 0.99, "max_cluster_fraction": 0.2}
    outcome, _ = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}, checks=strict), instance)
    checks = _checks(outcome)
    assert not checks["silhouette_threshold"].passed and not checks["largest_cluster_fraction"].passed
    assert checks["silhouette_threshold"].severity == AssetCheckSeverity.WARN
    assert checks["silhouette_threshold"].metadata["threshold"].value == 0.99
    assert checks["noise_fraction"].passed

    blocking = {**strict, "blocking": True}
    outcome, _ = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}, checks=blocking), instance)
    assert _checks(outcome)["silhouette_threshold"].severity == AssetCheckSeverity.ERROR


def test_drift_check_uses_the_previous_execution(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3}, checks={"min_ari_vs_previous": 0.9})
    materialize_config(lake, config, instance)
    outcome, result = materialize_config(lake, config, instance)
    check = _checks(outcome)["ari_vs_previous"]
    assert check.passed and check.metadata["value"].value == result.drift["adjusted_rand_index"] == 1.0


def test_report_command_writes_a_self_contained_page(lake, collections, instance, tmp_path, capsys):
    collections.ingest("default", "c", blob_documents(120, centers=3))
    _, result = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}), instance)
    output = tmp_path / "report.html"
    assert main(["executions", "report", result.run_id, "--output", str(output)]) == 0
    page = output.read_text()
    assert page.count('src="data:image/png;base64,') == 2 and result.run_id in page
    assert all(c.label in page for c in result.centroids)
    assert "http://" not in page and "https://" not in page  # nothing to fetch: readable offline
