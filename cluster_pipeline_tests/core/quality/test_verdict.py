"""The verdict beside the metrics: coverage, calibration note, and a warning for 0 or 1 cluster."""

import numpy as np
import pytest

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.quality.verdict import CALIBRATION_NOTE, coverage, percent, quality_note
from cluster_pipeline.core.render.report import markdown_summary
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline_tests.conftest import blob_documents


def test_coverage_says_what_the_metrics_saw():
    assert coverage(7600, 5959, 0, 1641, 1641) == "computed on 1,641 of 7,600 documents; 78 % noise"
    assert (
        coverage(7600, 412, 412, 7600, 7600)
        == "computed on 7,600 of 7,600 documents; 5 % noise, 412 of them reassigned to their nearest cluster"
    )
    assert coverage(50_000, 0, 0, 10_000, 50_000).endswith("; 0 % noise; silhouette on a stratified sample of 10,000")
    assert coverage(50_000, 0, 0, 10_000, 50_000, 20_000).endswith(
        "; silhouette on a stratified sample of 10,000; keywords and topic coherence from a stratified sample of 20,000"
    )
    assert coverage(900, 0, 0, 900, 900, 900) == "computed on 900 of 900 documents; 0 % noise"
    assert [percent(x) for x in (0.0, 0.003, 0.78, 1.0)] == ["0 %", "<1 %", "78 %", "100 %"]


def test_the_calibration_note_comes_with_a_poor_silhouette():
    assert quality_note(0.04, "none") == CALIBRATION_NOTE
    assert quality_note(0.8, "none") is None and quality_note(None, "umap") is None
    assert quality_note(0.8, "umap").startswith("The metrics are measured on the embeddings")


@pytest.mark.parametrize(
    ("algorithm", "parameters", "labels", "expected"),
    [
        ("hdbscan", {"min_cluster_size": 400}, [-1] * 6, "min_cluster_size=400 put every document in noise; try a"),
        ("optics", {"min_samples": 50}, [-1] * 6, "min_samples=50 put every document in noise; try a smaller"),
        ("kmeans", {"n_clusters": 1}, [0] * 6, "n_clusters=1 asks for a single cluster"),
        ("mean_shift", {"bandwidth": 9.0}, [0] * 6, "bandwidth=9.0 put every document in one cluster; try a smaller"),
        ("hdbscan", {}, [0, 0, 0, 0, -1, -1], "min_cluster_size=5 put 67 % of the documents in one cluster"),
        ("kmeans", {"n_clusters": 2}, [0, 0, 0, 1, 1, 1], None),
    ],
)
def test_warnings_name_the_setting_and_what_to_try(algorithm, parameters, labels, expected):
    warning = registry.spec(algorithm).warning(parameters, np.array(labels), np.eye(6, dtype=np.float32))
    assert warning == expected if expected is None else warning.startswith(expected)


def test_dbscan_warning_suggests_eps_from_the_data():
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((300, 4)) * 0.1).astype(np.float32)
    warning = registry.spec("dbscan").warning({"eps": 0.0001, "min_samples": 5}, np.full(300, -1), X)
    assert warning.startswith("eps=0.0001 put every document in noise; try eps between ")
    low, high = (float(v) for v in warning.split("between ")[1].split(" (")[0].split(" and "))
    assert 0.02 < low < high < 0.3  # 5th-neighbour distances of this cloud


def test_a_run_with_no_cluster_completes_with_a_warning(lake, collections):
    collections.ingest("default", "c", blob_documents(200, dim=16))
    config = ClusterConfig(collection="c", algorithm="dbscan", parameters={"eps": 0.0001})
    result = execute(lake, config, "run_00000000000000a1")
    assert result.status == "completed" and result.num_clusters == 0 and result.num_noise == 200
    assert result.metrics is None and result.coverage is None
    assert result.warning.startswith("eps=0.0001 put every document in noise; try eps between")
    stored = ResultStore(lake).get("default", result.run_id, config.cluster_id)
    assert stored.warning == result.warning and stored.reduction == {"method": "none"}
    summary = markdown_summary(stored)
    assert "| noise | 200 (100 %) |" in summary and f"| warning | {result.warning} |" in summary


def test_a_good_run_reports_coverage_and_the_seed_description(lake, collections):
    collections.ingest("default", "c", blob_documents(300, dim=16))
    result = execute(lake, ClusterConfig(collection="c", parameters={"n_clusters": 3}), "run_00000000000000a2")
    assert result.metrics["description"] in {"Excellent clustering quality", "Good clustering quality"}
    assert result.coverage == "computed on 300 of 300 documents; 0 % noise"
    assert result.warning is None and result.quality_note is None
    assert "| metrics | computed on 300 of 300 documents; 0 % noise |" in markdown_summary(result)


def test_executions_show_prints_the_noise_share_coverage_and_warning(lake, collections):
    from cluster_pipeline.cli.output import describe_result, executions_table

    collections.ingest("default", "c", blob_documents(200, dim=16))
    config = ClusterConfig(collection="c", algorithm="dbscan", parameters={"eps": 0.0001})
    text = describe_result(execute(lake, config, "run_00000000000000a3"))
    assert "200 documents, 0 clusters, 200 noise (100 %)" in text
    assert "  warning: eps=0.0001 put every document in noise; try eps between" in text
    row = executions_table([execute(lake, config, "run_00000000000000a5")]).splitlines()[-1].split()
    assert row[0] == "run_00000000000000a5" and row[-3:] == ["-", "100", "%"]  # no silhouette, all noise
    result = execute(lake, ClusterConfig(collection="c", parameters={"n_clusters": 3}), "run_00000000000000a4")
    assert "  metrics: computed on 200 of 200 documents; 0 % noise" in describe_result(result)
    assert "  topic words: coherence (NPMI) " in describe_result(result)  # blob_documents have text
