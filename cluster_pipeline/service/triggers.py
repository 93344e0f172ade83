"""Triggers as objects (Mixpeek's cluster triggers) over what the sensors and schedules already run: a
configuration's ``triggers`` block. A ``cron`` or ``interval`` trigger is its ``schedule`` (an interval
becomes the cron that fires at that period); an ``event`` trigger is its change trigger (``on_change``,
documents added: ``threshold`` → ``min_new_documents``, ``cooldown_seconds``). Pausing clears the block's
field, resuming sets it again from the trigger, which is kept in the lake (``<namespace>/triggers/``).
A configuration has at most one schedule trigger and one event trigger; their ids say which.
"""

from __future__ import annotations

import builtins
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from cluster_pipeline.core.config.model import ClusterConfig, check_cron
from cluster_pipeline.core.errors import AlreadyExistsError, ConfigurationError, InvalidIdentifierError, NotFoundError
from cluster_pipeline.core.store.history import HistoryQuery
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.service.configurations import ConfigurationChanges, Configurations
from cluster_pipeline.service.executions import Executions
from cluster_pipeline.service.scope import Scope

TriggerType = Literal["cron", "interval", "event"]
TRIGGER_TYPES = ("cron", "interval", "event")
# what each kind of trigger writes in the executions it starts (the runs' trigger tag)
STARTED_BY = {"cron": ("schedule", "nightly"), "interval": ("schedule", "nightly"),
              "event": ("collection_change", "novelty", "growth")}  # fmt: skip


@dataclass(frozen=True)
class Trigger:
    trigger_id: str
    cluster_id: str
    trigger_type: TriggerType
    schedule_config: dict[str, Any]
    status: Literal["active", "paused"]
    created_at: str
    updated_at: str
    description: str | None = None


def interval_cron(seconds: Any) -> str:
    """The cron firing every ``seconds`` (whole minutes dividing an hour, or hours dividing a day)."""
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 60 or seconds % 60:
        raise ConfigurationError("schedule_config.interval_seconds must be a whole number of minutes (60, 300, …).")
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *" if minutes < 1440 else "0 0 * * *"
    raise ConfigurationError(
        f"schedule_config.interval_seconds {seconds} has no cron: use minutes dividing an hour (60 … 1800) or "
        "hours dividing a day (3600 … 86400)."
    )


def block_fields(trigger_type: str, schedule_config: dict[str, Any], active: bool) -> list[tuple[str, Any]]:
    """The configuration's ``triggers`` settings for this trigger (cleared when not ``active``)."""
    if trigger_type == "event":
        known = {"event_type", "threshold", "cooldown_seconds"}
        unknown = sorted(set(schedule_config) - known)
        if unknown:
            raise ConfigurationError(
                f"schedule_config.{unknown[0]}: an event trigger takes {', '.join(sorted(known))}."
            )
        if schedule_config.get("event_type", "documents_added") != "documents_added":
            raise ConfigurationError("schedule_config.event_type: only 'documents_added' events start executions.")
        return [("triggers.on_change", active), ("triggers.min_new_documents", schedule_config.get("threshold", 1)),
                ("triggers.cooldown_seconds", schedule_config.get("cooldown_seconds", 0))]  # fmt: skip
    if trigger_type == "cron":
        if not isinstance(schedule_config.get("cron_expression"), str):
            raise ConfigurationError("schedule_config.cron_expression: a 5-field cron such as '0 2 * * *'.")
        cron = check_cron(schedule_config["cron_expression"]) if active else None
    elif trigger_type == "interval":
        cron = interval_cron(schedule_config.get("interval_seconds")) if active else None
    else:
        raise ConfigurationError(f"trigger_type {trigger_type!r}: use one of {', '.join(TRIGGER_TYPES)}.")
    timezone = schedule_config.get("timezone", "UTC")
    return [("triggers.schedule", cron), ("triggers.timezone", timezone)]


class Triggers:
    def __init__(self, scope: Scope, configurations: Configurations, executions: Executions) -> None:
        self.scope, self.configurations, self.executions = scope, configurations, executions

    def _key(self, trigger_id: str) -> str:
        return self.scope.lake.trigger_key(self.scope.namespace, trigger_id)

    def _save(self, trigger: Trigger) -> None:
        self.scope.lake.storage.write_replace(self._key(trigger.trigger_id), json.dumps(asdict(trigger)).encode())

    def get(self, trigger_id: str) -> Trigger:
        try:
            return Trigger(**json.loads(self.scope.lake.storage.read_bytes(self._key(trigger_id))))
        except (NotFoundError, InvalidIdentifierError):
            raise NotFoundError(f"Trigger {trigger_id!r} not found in namespace {self.scope.namespace!r}.") from None

    def list(self, cluster: str | None = None) -> builtins.list[Trigger]:
        prefix = self.scope.lake.triggers_prefix(self.scope.namespace)
        cluster_id = self.configurations.get(cluster).cluster_id if cluster else None
        found = [Trigger(**json.loads(self.scope.lake.storage.read_bytes(key)))
                 for key in self.scope.lake.storage.list_keys(prefix) if key.endswith(".json")]  # fmt: skip
        return sorted((t for t in found if cluster_id in (None, t.cluster_id)), key=lambda t: t.created_at)

    def create(
        self, cluster: str, trigger_type: str, schedule_config: dict[str, Any], description: str | None = None,
        status: str = "active",
    ) -> Trigger:  # fmt: skip
        """A trigger on the configuration ``cluster``; AlreadyExistsError when it has one of that kind."""
        config = self.configurations.get(cluster)
        if trigger_type not in TRIGGER_TYPES:
            raise ConfigurationError(f"trigger_type {trigger_type!r}: use one of {', '.join(TRIGGER_TYPES)}.")
        trigger_id = f"trg_{'e' if trigger_type == 'event' else 's'}_{config.cluster_id}"
        if self.scope.lake.storage.exists(self._key(trigger_id)):
            raise AlreadyExistsError(
                f"{config.display_name} has a {'event' if trigger_type == 'event' else 'schedule'} trigger already "
                f"({trigger_id}): update or delete it."
            )
        now = datetime.now(UTC).isoformat()
        trigger = Trigger(trigger_id, config.cluster_id, trigger_type, dict(schedule_config),  # type: ignore[arg-type]
                          "paused" if status == "paused" else "active", now, now, description)  # fmt: skip
        self._apply(config, trigger)
        self._save(trigger)
        return trigger

    def update(
        self, trigger_id: str, *, schedule_config: dict[str, Any] | None = None, description: str | None = None,
        status: str | None = None,
    ) -> Trigger:  # fmt: skip
        trigger = self.get(trigger_id)
        changed = replace(
            trigger,
            schedule_config=trigger.schedule_config if schedule_config is None else dict(schedule_config),
            description=trigger.description if description is None else description,
            status=trigger.status if status is None else ("paused" if status == "paused" else "active"),
            updated_at=datetime.now(UTC).isoformat(),
        )
        self._apply(self.configurations.get(trigger.cluster_id), changed)
        self._save(changed)
        return changed

    def delete(self, trigger_id: str) -> Trigger:
        trigger = self.get(trigger_id)
        with suppress(NotFoundError):  # the configuration went first: nothing runs it any more
            self._apply(self.configurations.get(trigger.cluster_id), replace(trigger, status="paused"))
        self.scope.lake.storage.delete(self._key(trigger_id))
        return trigger

    def history(self, trigger_id: str, offset: int, limit: int) -> tuple[builtins.list[ExecutionResult], int]:
        """The executions this kind of trigger started for its configuration, newest first, and how many."""
        trigger = self.get(trigger_id)
        page = self.executions.list(
            trigger.cluster_id,
            HistoryQuery(limit=limit, offset=offset),
            filter={"field": "trigger", "operator": "in", "value": list(STARTED_BY[trigger.trigger_type])},
            include_total=True,
        )
        return page.results, page.total or 0

    def _apply(self, config: ClusterConfig, trigger: Trigger) -> None:
        settings = block_fields(trigger.trigger_type, trigger.schedule_config, trigger.status == "active")
        self.configurations.update(config.cluster_id, ConfigurationChanges(settings=settings))
