"""What "good" means for a result, per configuration: the logic behind the asset checks.

Each check gives a value, its threshold and whether it passed. A check without a threshold in the
configuration passes and says so; the drift check passes when there is no previous execution.
Whether a miss warns or fails the run is the configuration's ``checks.blocking``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster_pipeline.core.config import QualityChecks
from cluster_pipeline.core.results import ExecutionResult


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    description: str


CHECK_NAMES = (
    "silhouette_threshold",
    "davies_bouldin_threshold",
    "largest_cluster_fraction",
    "noise_fraction",
    "ari_vs_previous",
)


def _bound(name: str, value: float | None, threshold: float | None, *, minimum: bool, what: str) -> CheckOutcome:
    if threshold is None:
        return CheckOutcome(name, True, value, None, f"{what} is {value}; no threshold configured")
    if value is None:
        return CheckOutcome(name, True, None, threshold, f"{what} not available for this execution")
    passed = value >= threshold if minimum else value <= threshold
    relation = ("≥" if passed else "<") if minimum else ("≤" if passed else ">")
    return CheckOutcome(name, passed, value, threshold, f"{what} {value:.4g} {relation} {threshold:.4g}")


def evaluate_checks(result: ExecutionResult, checks: QualityChecks) -> list[CheckOutcome]:
    """All five checks for one ExecutionResult."""
    metrics = result.metrics or {}
    sizes = [c.num_members for c in result.centroids or []]
    points = max(result.num_points, 1)
    largest = max(sizes) / points if sizes else None
    noise = result.num_noise / points
    ari = (result.drift or {}).get("adjusted_rand_index")
    outcomes = [
        _bound(
            "silhouette_threshold",
            metrics.get("silhouette_score"),
            checks.min_silhouette,
            minimum=True,
            what="silhouette",
        ),
        _bound(
            "davies_bouldin_threshold",
            metrics.get("davies_bouldin_index"),
            checks.max_davies_bouldin,
            minimum=False,
            what="Davies–Bouldin index",
        ),
        _bound(
            "largest_cluster_fraction",
            largest,
            checks.max_cluster_fraction,
            minimum=False,
            what="share of points in the largest cluster",
        ),
        _bound("noise_fraction", noise, checks.max_noise_fraction, minimum=False, what="share of noise points"),
    ]
    if result.drift is None:
        outcomes.append(
            CheckOutcome(
                "ari_vs_previous", True, None, checks.min_ari_vs_previous, "no previous execution to compare with"
            )
        )
    else:
        outcomes.append(
            _bound(
                "ari_vs_previous",
                ari,
                checks.min_ari_vs_previous,
                minimum=True,
                what="adjusted Rand index against the previous execution",
            )
        )
    return outcomes
