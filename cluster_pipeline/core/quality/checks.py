"""What "good" means for a result, per configuration: the logic behind the asset checks.

Each check gives a value, its threshold and an outcome: passed, failed, or skipped (saying why) when
no threshold is configured (nothing was asked, so nothing passed), when the value does not exist for
this execution (no silhouette with fewer than 2 clusters), or for the drift check on a configuration's
first execution. Whether a miss warns or fails the run is the configuration's ``checks.blocking``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster_pipeline.core.store.results import ExecutionResult

Outcome = Literal["passed", "failed", "skipped"]


class QualityChecks(BaseModel):
    """What 'good' means for this configuration's results (asset checks)."""

    model_config = ConfigDict(extra="forbid")

    min_silhouette: float | None = Field(None, ge=-1.0, le=1.0)
    max_davies_bouldin: float | None = Field(None, ge=0.0)
    max_cluster_fraction: float = Field(0.5, gt=0.0, le=1.0)
    max_noise_fraction: float = Field(0.5, ge=0.0, le=1.0)
    min_ari_vs_previous: float | None = Field(None, ge=-1.0, le=1.0)
    min_coherence: float | None = Field(None, ge=-1.0, le=1.0, description="Mean NPMI of the topics' top words.")
    min_diversity: float | None = Field(None, ge=0.0, le=1.0, description="Share of distinct words in the topics.")
    blocking: bool = Field(False, description="Fail (error) instead of warn when a check does not pass.")


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    outcome: Outcome
    value: float | None
    threshold: float | None
    description: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def skipped(self) -> bool:
        return self.outcome == "skipped"


# Each check: the configuration field that sets its threshold, whether the value must reach it (or
# stay at or under it), and what the value is.
CHECKS = {
    "silhouette_threshold": ("min_silhouette", True, "silhouette"),
    "davies_bouldin_threshold": ("max_davies_bouldin", False, "Davies–Bouldin index"),
    "largest_cluster_fraction": ("max_cluster_fraction", False, "share of points in the largest cluster"),
    "noise_fraction": ("max_noise_fraction", False, "share of noise points"),
    "ari_vs_previous": ("min_ari_vs_previous", True, "adjusted Rand index against the previous execution"),
    "coherence_threshold": ("min_coherence", True, "mean NPMI coherence of the topics"),
    "diversity_threshold": ("min_diversity", True, "topic diversity"),
}
CHECK_NAMES = tuple(CHECKS)
THRESHOLD_FIELDS = {name: field for name, (field, _, _) in CHECKS.items()}


def significant(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded to ``digits`` significant digits (what a person reads; the result keeps all)."""
    return None if value is None else float(f"{value:.{digits}g}")


def _bound(name: str, value: float | None, checks: QualityChecks) -> CheckOutcome:
    field, minimum, what = CHECKS[name]
    threshold = getattr(checks, field)
    if threshold is None:
        shown = "" if value is None else f" ({what} is {value:.4g})"
        return CheckOutcome(name, "skipped", value, None, f"no threshold configured: set checks.{field}{shown}")
    if value is None:
        return CheckOutcome(name, "skipped", None, threshold, f"{what} not available for this execution")
    passed = value >= threshold if minimum else value <= threshold
    relation = ("≥" if passed else "<") if minimum else ("≤" if passed else ">")
    return CheckOutcome(
        name, "passed" if passed else "failed", value, threshold, f"{what} {value:.4g} {relation} {threshold:.4g}"
    )


def evaluate_checks(result: ExecutionResult, checks: QualityChecks) -> list[CheckOutcome]:
    """Every check for one ExecutionResult, in ``CHECK_NAMES`` order."""
    metrics = result.metrics or {}
    sizes = [c.num_members for c in result.centroids or []]
    points = max(result.num_points, 1)
    values = {
        "silhouette_threshold": metrics.get("silhouette_score"),
        "davies_bouldin_threshold": metrics.get("davies_bouldin_index"),
        "largest_cluster_fraction": max(sizes) / points if sizes else None,
        "noise_fraction": result.num_noise / points,
        "ari_vs_previous": (result.drift or {}).get("adjusted_rand_index"),
        "coherence_threshold": metrics.get("coherence_npmi"),
        "diversity_threshold": metrics.get("topic_diversity"),
    }
    outcomes = [_bound(name, value, checks) for name, value in values.items()]
    if result.drift is None:
        first = "first execution of the configuration: no previous one to compare with"
        index = CHECK_NAMES.index("ari_vs_previous")
        outcomes[index] = CheckOutcome("ari_vs_previous", "skipped", None, checks.min_ari_vs_previous, first)
    return outcomes
