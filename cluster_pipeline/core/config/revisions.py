"""How a configuration changes over its life: what may change, and what makes a new version.

Its id, namespace, collection, name and creation time never change: its history (every
ExecutionResult, the drift between them) is of one collection, and its name is its Dagster partition,
whose runs a rename would orphan. A change to what an execution computes makes a new ``version``; a
change to how it is described, triggered or judged (``UNVERSIONED_FIELDS``) keeps it. Every
ExecutionResult stores the whole configuration it ran with, so a history spanning versions stays
readable. Revising is refused while an execution is pending or processing (the service checks):
a queued run reads the configuration when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.store.results import utc_now

IMMUTABLE_FIELDS = ("cluster_id", "namespace", "collection", "name", "created_at")
WHY_IMMUTABLE = {
    "collection": "its executions are a history of one collection",
    "name": "it is the configuration's Dagster partition, with its runs",
}
# fields that change how a configuration is described, started or judged, not what it computes
UNVERSIONED_FIELDS = ("description", "triggers", "checks")
BOOKKEEPING_FIELDS = ("version", "updated_at")


@dataclass(frozen=True)
class Revision:
    """A revised configuration, which top-level fields changed, and whether that made a new version."""

    config: ClusterConfig
    changed: list[str]
    new_version: bool


def revise(current: ClusterConfig, data: dict[str, Any]) -> Revision:
    """Validate ``data`` (the whole revised configuration, as JSON) as the next state of ``current``;
    ConfigurationError for an immutable field changed, an invalid configuration, or no change."""
    before = current.model_dump(mode="json")
    for name in IMMUTABLE_FIELDS:
        if name in data and data[name] != before[name]:
            why = WHY_IMMUTABLE.get(name, "its executions are a history of one configuration")
            raise ConfigurationError(
                f"{name} of {current.display_name} cannot change ({why}); create a new configuration instead."
            )
    candidate = parse_config({**data, **{name: before[name] for name in (*IMMUTABLE_FIELDS, *BOOKKEEPING_FIELDS)}})
    after = candidate.model_dump(mode="json")
    changed = [name for name in after if name not in BOOKKEEPING_FIELDS and after[name] != before[name]]
    if not changed:
        raise ConfigurationError(f"Nothing to change: {current.cluster_id} already has these settings.")
    new_version = any(name not in UNVERSIONED_FIELDS for name in changed)
    revised = candidate.model_copy(update={"version": current.version + int(new_version), "updated_at": utc_now()})
    return Revision(revised, changed, new_version)
