"""When a collection change should assign new documents or start an execution: plain decisions, no
Dagster (the README's "Refit on drift" states the rules). The change sensor remembers, per
configuration, the collection state it last acted on; changes are counted from listings alone (part
names carry row counts, assignment part names their novel counts), never from the embeddings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cluster_pipeline.core.config.model import ClusterConfig, check_cron
from cluster_pipeline.core.incremental.baseline import Baseline
from cluster_pipeline.core.quality.verdict import percent
from cluster_pipeline.core.store.collections import CollectionSnapshot


@dataclass(frozen=True)
class TriggerState:
    """The collection as the sensor last acted on it; ``triggered_at`` is when it last requested an
    execution (the cooldown's clock; assignments do not reset it)."""

    version: str
    sequence: int
    num_documents: int
    triggered_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TriggerState:
        return cls(str(data["version"]), int(data["sequence"]), int(data["num_documents"]), float(data["triggered_at"]))


@dataclass(frozen=True)
class ChangeDecision:
    run: bool
    reason: str
    changed_documents: int


def changed_documents(snapshot: CollectionSnapshot, previous: TriggerState | None) -> int:
    """Documents added plus documents removed since ``previous`` (all of them on first sight)."""
    since = previous.sequence if previous else 0
    return sum(p.num_rows for p in (*snapshot.parts, *snapshot.deletions) if p.sequence > since)


def decide_on_change(
    config: ClusterConfig, snapshot: CollectionSnapshot, previous: TriggerState | None, now: float
) -> ChangeDecision:
    """Should this snapshot start an execution of ``config``?"""
    if not config.triggers.on_change:
        return ChangeDecision(False, "change triggers are off", 0)
    change = enough_change(config, snapshot, previous)
    wait = cooldown_left(config, previous, now)
    if change.run and wait > 0:
        return ChangeDecision(False, f"cooling down for another {wait:.0f} s", change.changed_documents)
    return change


def enough_change(config: ClusterConfig, snapshot: CollectionSnapshot, previous: TriggerState | None) -> ChangeDecision:
    """Did enough documents change since ``previous`` (the thresholds, not the cooldown)?"""
    triggers = config.triggers
    if previous is not None and previous.version == snapshot.version:
        return ChangeDecision(False, "no change", 0)
    changed = changed_documents(snapshot, previous)
    base = previous.num_documents if previous else 0
    required = max(triggers.min_new_documents, math.ceil(triggers.min_new_fraction * base))
    if changed < required:
        return ChangeDecision(False, f"{changed} changed documents, below the threshold of {required}", changed)
    return ChangeDecision(True, f"{changed} documents changed", changed)


def cooldown_left(config: ClusterConfig, previous: TriggerState | None, now: float) -> float:
    """Seconds until the sensor may request another execution (0 when it may now)."""
    return 0.0 if previous is None else max(0.0, config.triggers.cooldown_seconds - (now - previous.triggered_at))


def state_after_trigger(snapshot: CollectionSnapshot, now: float) -> TriggerState:
    return TriggerState(snapshot.version, snapshot.last_sequence, snapshot.num_documents, now)


def state_after(
    refresh: Refresh, snapshot: CollectionSnapshot, previous: TriggerState | None, now: float
) -> TriggerState:
    """The sensor's memory after acting: an assignment keeps the cooldown's clock where it was."""
    kept = previous.triggered_at if previous else 0.0
    return state_after_trigger(snapshot, now if refresh.action == "execute" else kept)


@dataclass(frozen=True)
class FitProgress:
    """How far a configuration's latest execution is behind its collection (from listings alone)."""

    run_id: str
    fitted_documents: int
    added_since_fit: int
    assigned: int
    novel: int
    covered_sequence: int

    @classmethod
    def of(cls, base: Baseline, snapshot: CollectionSnapshot) -> FitProgress:
        return cls(
            base.result.run_id,
            base.result.num_points,
            base.added_since_fit(snapshot),
            base.assigned,
            base.novel,
            base.covered_sequence,
        )


Action = Literal["none", "assign", "execute"]


@dataclass(frozen=True)
class Refresh:
    """What the change sensor does for one configuration: nothing, assign new documents, or execute."""

    action: Action
    trigger: str
    reason: str


def decide_refresh(
    config: ClusterConfig,
    snapshot: CollectionSnapshot,
    previous: TriggerState | None,
    fit: FitProgress | None,
    now: float,
    *,
    execution_in_flight: bool = False,
) -> Refresh:
    """Assign, execute or wait (see the module doc)."""
    triggers = config.triggers
    if fit is None or not triggers.assign_new_documents:
        change = decide_on_change(config, snapshot, previous, now)
        return Refresh("execute" if change.run else "none", "collection_change", change.reason)
    if not triggers.on_change:
        return Refresh("none", "", "change triggers are off")
    refit = _refit_condition(config, fit)
    if refit is not None and not execution_in_flight:  # one in flight clusters these documents too
        wait = cooldown_left(config, previous, now)
        if wait <= 0:
            return Refresh("execute", *refit)
        refit = (refit[0], f"{refit[1]}; cooling down for another {wait:.0f} s")
    if snapshot.last_sequence <= fit.covered_sequence:
        return Refresh("none", "", refit[1] if refit else "every document has a cluster")
    change = enough_change(config, snapshot, previous)
    if not change.run:
        return Refresh("none", "", change.reason)
    return Refresh("assign", "collection_change", f"{change.reason}: assign them to the clusters of {fit.run_id}")


def _refit_condition(config: ClusterConfig, fit: FitProgress) -> tuple[str, str] | None:
    """``(trigger, reason)`` of the first refit condition that holds, or None."""
    triggers = config.triggers
    share = fit.novel / fit.assigned if fit.assigned else 0.0
    if (
        triggers.refit_novel_fraction is not None
        and fit.novel >= triggers.refit_min_novel_documents
        and share >= triggers.refit_novel_fraction
    ):
        return "novelty", (
            f"{fit.novel} of the {fit.assigned} documents assigned since {fit.run_id} are novel ({percent(share)}, "
            f"threshold {percent(triggers.refit_novel_fraction)})"
        )
    growth = fit.added_since_fit / max(fit.fitted_documents, 1)
    if triggers.refit_growth_fraction is not None and fit.added_since_fit and growth >= triggers.refit_growth_fraction:
        return "growth", (
            f"{fit.added_since_fit} documents added since {fit.run_id} ({percent(growth)} of the {fit.fitted_documents} it "
            f"clustered, threshold {percent(triggers.refit_growth_fraction)})"
        )
    return None


def cron_of(config: ClusterConfig) -> str | None:
    """The configuration's cron: ``nightly`` means the default ``0 2 * * *``; None means no schedule."""
    schedule = config.triggers.schedule
    return check_cron(schedule) if schedule and schedule.strip() else None
