"""When a collection change should start an execution: plain decisions, no Dagster.

The change sensor remembers, per configuration, the collection state at its last trigger. A new
state triggers when enough documents were added or removed since then (``min_new_documents``, or
``min_new_fraction`` of the collection) and the cooldown has passed. Counting uses only the part
listing (part names carry row counts), never the embeddings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cluster_pipeline.core.collections import CollectionSnapshot
from cluster_pipeline.core.config import ClusterConfig, check_cron


@dataclass(frozen=True)
class TriggerState:
    """The collection as the last triggered execution saw it."""

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


def last_sequence(snapshot: CollectionSnapshot) -> int:
    return max((p.sequence for p in (*snapshot.parts, *snapshot.deletions)), default=0)


def changed_documents(snapshot: CollectionSnapshot, previous: TriggerState | None) -> int:
    """Documents added plus documents removed since ``previous`` (all of them on first sight)."""
    since = previous.sequence if previous else 0
    return sum(p.num_rows for p in (*snapshot.parts, *snapshot.deletions) if p.sequence > since)


def decide_on_change(
    config: ClusterConfig, snapshot: CollectionSnapshot, previous: TriggerState | None, now: float
) -> ChangeDecision:
    """Should this snapshot start an execution of ``config``?"""
    triggers = config.triggers
    if not triggers.on_change:
        return ChangeDecision(False, "change triggers are off", 0)
    if previous is not None and previous.version == snapshot.version:
        return ChangeDecision(False, "no change", 0)
    changed = changed_documents(snapshot, previous)
    base = previous.num_documents if previous else 0
    required = max(triggers.min_new_documents, math.ceil(triggers.min_new_fraction * base))
    if changed < required:
        return ChangeDecision(False, f"{changed} changed documents, below the threshold of {required}", changed)
    if previous is not None and now - previous.triggered_at < triggers.cooldown_seconds:
        wait = triggers.cooldown_seconds - (now - previous.triggered_at)
        return ChangeDecision(False, f"cooling down for another {wait:.0f} s", changed)
    return ChangeDecision(True, f"{changed} documents changed", changed)


def state_after_trigger(snapshot: CollectionSnapshot, now: float) -> TriggerState:
    return TriggerState(snapshot.version, last_sequence(snapshot), snapshot.num_documents, now)


def cron_of(config: ClusterConfig) -> str | None:
    """The configuration's cron: ``nightly`` means the default ``0 2 * * *``; None means no schedule."""
    schedule = config.triggers.schedule
    return check_cron(schedule) if schedule and schedule.strip() else None
