"""``/v1/clusters/triggers``: cron, interval and event triggers of configurations (``service.triggers``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from cluster_pipeline.api.auth import Caller, JsonBody, OptionalBody, ReadCaller, WriteCaller
from cluster_pipeline.api.errors import not_offered, refused
from cluster_pipeline.core.store.results import format_timestamp
from cluster_pipeline.service.triggers import Trigger

router = APIRouter(prefix="/v1/clusters/triggers", tags=["cluster triggers"])


def trigger_model(caller: Caller, trigger: Trigger) -> dict[str, Any]:
    """A trigger as the SDK's ``TriggerModel``."""
    config = caller.service.configurations.get(trigger.cluster_id)
    return {
        "trigger_id": trigger.trigger_id,
        "cluster_id": trigger.cluster_id,
        "namespace_id": caller.namespace,
        "internal_id": caller.namespace,
        "execution_config": {
            "collection_ids": [config.collection],
            "config": {"algorithm": config.algorithm, **config.parameters},
        },  # fmt: skip
        "trigger_type": trigger.trigger_type,
        "schedule_config": trigger.schedule_config,
        "status": trigger.status,
        "created_at": trigger.created_at,
        "updated_at": trigger.updated_at,
        "description": trigger.description,
    }


@router.post("")
def create_trigger(body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    if not body.get("cluster_id"):
        if body.get("execution_config"):
            raise not_offered("Triggers with an inline execution_config (create the cluster, then its trigger)")
        raise refused("cluster_id", "name the cluster the trigger executes.")
    if body.get("trigger_type") == "conditional":
        raise not_offered("Conditional triggers")
    trigger = caller.service.triggers.create(
        body["cluster_id"], body.get("trigger_type", ""), body.get("schedule_config") or {}, body.get("description"),
        body.get("status") or "active",
    )  # fmt: skip
    return trigger_model(caller, trigger)


@router.post("/list")
def list_triggers(caller: ReadCaller, body: OptionalBody = None) -> dict[str, Any]:
    body = body or {}
    found = caller.service.triggers.list(body.get("cluster_id"))
    found = [t for t in found if body.get("trigger_type") in (None, t.trigger_type)]
    found = [t for t in found if body.get("status") in (None, t.status)]
    if body.get("direction", "desc") == "desc":
        found.reverse()
    offset, limit = body.get("offset") or 0, body.get("limit") or 50
    shown = [trigger_model(caller, t) for t in found[offset : offset + limit]]
    return {"results": shown, "total": len(found), "offset": offset, "limit": limit}


@router.get("/{trigger_id}")
def get_trigger(trigger_id: str, caller: ReadCaller) -> dict[str, Any]:
    return trigger_model(caller, caller.service.triggers.get(trigger_id))


@router.patch("/{trigger_id}")
def update_trigger(trigger_id: str, body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    trigger = caller.service.triggers.update(
        trigger_id, schedule_config=body.get("schedule_config"), description=body.get("description"),
        status=body.get("status"),
    )  # fmt: skip
    return trigger_model(caller, trigger)


@router.delete("/{trigger_id}", status_code=204)
def delete_trigger(trigger_id: str, caller: WriteCaller) -> Response:
    caller.service.triggers.delete(trigger_id)
    return Response(status_code=204)


@router.post("/{trigger_id}/pause")
def pause_trigger(trigger_id: str, caller: WriteCaller) -> dict[str, Any]:
    return trigger_model(caller, caller.service.triggers.update(trigger_id, status="paused"))


@router.post("/{trigger_id}/resume")
def resume_trigger(trigger_id: str, caller: WriteCaller) -> dict[str, Any]:
    return trigger_model(caller, caller.service.triggers.update(trigger_id, status="active"))


@router.post("/{trigger_id}/history")
def trigger_history(trigger_id: str, caller: ReadCaller, body: OptionalBody = None) -> dict[str, Any]:
    body = body or {}
    offset, limit = body.get("offset") or 0, body.get("limit") or 50
    results, total = caller.service.triggers.history(trigger_id, offset, limit)
    if body.get("status_filter"):
        results = [r for r in results if r.status == body["status_filter"]]
    executions = [
        {
            "job_id": r.run_id,
            "triggered_at": format_timestamp(r.created_at),
            "status": r.status,
            "execution_time_ms": int((r.completed_at - r.created_at).total_seconds() * 1000)
            if r.completed_at
            else None,
            "error": r.error_message,
            "num_clusters": r.num_clusters,
            "num_documents": r.num_points,
        }
        for r in results
    ]
    return {"trigger_id": trigger_id, "executions": executions, "total": total, "offset": offset, "limit": limit}
