import pytest

from cluster_pipeline.core.quality.checks import QualityChecks, evaluate_checks, significant
from cluster_pipeline_tests.core.store.test_results import completed


def test_checks_without_a_threshold_or_a_value_are_skipped_and_say_why():
    result = completed()  # silhouette 0.85, DB 0.42, clusters 6 and 4 of 10 points, no drift
    outcomes = {o.name: o for o in evaluate_checks(result, QualityChecks())}
    assert {name: o.outcome for name, o in outcomes.items()} == {
        "silhouette_threshold": "skipped",
        "davies_bouldin_threshold": "skipped",
        "largest_cluster_fraction": "failed",  # 6 of 10 points; max_cluster_fraction defaults to 0.5
        "noise_fraction": "passed",  # max_noise_fraction defaults to 0.5
        "ari_vs_previous": "skipped",
        "coherence_threshold": "skipped",
        "diversity_threshold": "skipped",
    }
    assert (
        outcomes["silhouette_threshold"].description
        == "no threshold configured: set checks.min_silhouette (silhouette is 0.85)"
    )
    assert outcomes["ari_vs_previous"].description.startswith("first execution of the configuration")
    no_metrics = result.with_updates(metrics=None)
    skipped = {o.name: o for o in evaluate_checks(no_metrics, QualityChecks(min_silhouette=0.1))}[
        "silhouette_threshold"
    ]
    assert skipped.skipped and skipped.description == "silhouette not available for this execution"


def test_checks_pass_and_fail_against_their_thresholds():
    strict = QualityChecks(
        min_silhouette=0.9,
        max_davies_bouldin=0.4,
        max_cluster_fraction=0.5,
        max_noise_fraction=0.05,
        min_ari_vs_previous=0.8,
        min_coherence=0.1,
        min_diversity=0.95,
    )
    topics = {"coherence_npmi": 0.05, "coherence_npmi_document": 0.2, "topic_diversity": 0.9}
    drifting = completed().with_updates(
        num_noise=2,
        drift={"adjusted_rand_index": 0.3, "previous_run_id": "run_x"},
        metrics={**completed().metrics, **topics},
    )
    outcomes = {o.name: o for o in evaluate_checks(drifting, strict)}
    assert all(o.outcome == "failed" for o in outcomes.values())
    assert outcomes["largest_cluster_fraction"].value == pytest.approx(0.6)
    assert outcomes["silhouette_threshold"].description == "silhouette 0.85 < 0.9"
    assert outcomes["coherence_threshold"].description == "mean NPMI coherence of the topics 0.05 < 0.1"
    lenient = QualityChecks(min_silhouette=0.5, min_ari_vs_previous=0.2, min_coherence=0.0, min_diversity=0.9)
    passed = {o.name: o.outcome for o in evaluate_checks(drifting, lenient)}
    assert passed["ari_vs_previous"] == passed["coherence_threshold"] == passed["diversity_threshold"] == "passed"


def test_significant_digits():
    assert significant(0.03774607136989689) == 0.03775
    assert significant(1234.5678) == 1235.0 and significant(None) is None
