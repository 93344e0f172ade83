"""``/v1/clusters``: configurations (create, get, list, patch, delete) and ``execute``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cluster_pipeline.api.auth import Caller, JsonBody, OptionalBody, ReadCaller, WriteCaller
from cluster_pipeline.api.errors import not_offered, refused
from cluster_pipeline.api.paging import Page, PageQuery
from cluster_pipeline.api.shapes import (
    cluster_metadata,
    cluster_model,
    configuration_fields,
    filters_of,
    labeling_fields,
)
from cluster_pipeline.service import ConfigurationChanges

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])
EXECUTE_DEFAULTS = {"mode": "full", "assignment_threshold": 0.5}


@router.post("")
def create_cluster(body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    config = caller.service.configurations.create(ConfigurationChanges(configuration_fields(body)))
    return cluster_metadata(config)


def _listed(caller: Caller, page: Page, search: str | None, sort: dict[str, Any] | None) -> dict[str, Any]:
    configs = caller.service.configurations.list()
    if search:
        text = search.lower()
        configs = [c for c in configs if any(text in (v or "").lower() for v in (c.display_name, c.cluster_id,
                                                                                  c.description, c.collection))]  # fmt: skip
    if sort:
        field = sort.get("field")
        if field not in ("created_at", "cluster_name"):
            raise refused("sort.field", "sort clusters by created_at or cluster_name.")
        key = (lambda c: c.created_at) if field == "created_at" else (lambda c: c.display_name)
        configs.sort(key=key, reverse=sort.get("direction") == "desc")
    shown = configs[page.offset : page.offset + page.limit]
    return {
        "results": [cluster_metadata(c) for c in shown],
        "pagination": page.response(len(configs)),
        "total_count": len(configs),
    }


@router.post("/list")
def list_clusters(page: PageQuery, caller: ReadCaller, body: OptionalBody = None) -> dict[str, Any]:
    body = body or {}
    if body.get("filters"):
        raise refused("filters", "filter clusters with search (name, id, description, collection).")
    return _listed(caller, page.of(body), body.get("search"), body.get("sort"))


@router.get("")
def list_clusters_get(page: PageQuery, caller: ReadCaller, search: str | None = None) -> dict[str, Any]:
    return _listed(caller, page, search, None)


@router.get("/{cluster_identifier}")
def get_cluster(cluster_identifier: str, caller: ReadCaller) -> dict[str, Any]:
    return cluster_metadata(caller.service.configurations.get(cluster_identifier))


@router.patch("/{cluster_identifier}")
def patch_cluster(cluster_identifier: str, body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    for name in ("metadata", "face_cluster_merge", "source_cluster_ids", "layout_stability"):
        if body.get(name):
            raise refused(name, "cluster_pipeline does not offer it; omit it.")
    fields: dict[str, Any] = {}
    if body.get("cluster_name") is not None:
        fields["name"] = body["cluster_name"]
    if body.get("description") is not None:
        fields["description"] = body["description"]
    if body.get("sample_size") is not None:
        fields["sample_size"] = body["sample_size"]
    if "filters" in body:
        fields["filters"] = filters_of(body.get("filters"), "filters")
    if body.get("llm_labeling"):
        fields["labeling"] = labeling_fields(body["llm_labeling"], "llm_labeling")
    settings = [(f"parameters.{name}", value) for name, value in (body.get("algorithm_params") or {}).items()]
    revision = caller.service.configurations.update(cluster_identifier, ConfigurationChanges(fields, settings=settings))
    return cluster_model(revision.config)


@router.delete("/{cluster_id}")
def delete_cluster(cluster_id: str, caller: WriteCaller, cascade_output_collections: bool = True) -> dict[str, Any]:
    deletion = caller.service.configurations.delete(cluster_id)
    return {"success": True, "cluster_id": deletion.config.cluster_id, "executions_kept": deletion.executions}


@router.post("/{cluster_id}/execute")
def execute_cluster(cluster_id: str, caller: WriteCaller, body: OptionalBody = None) -> dict[str, Any]:
    """Queue an execution (a Dagster run of the configuration's partition) and answer at once."""
    body = body or {}
    if body.get("mode") in ("assign", "composite"):
        raise not_offered(f"Execution mode {body['mode']!r} (new documents are assigned by the collection sensor)")
    for name, value in body.items():
        if value is not None and EXECUTE_DEFAULTS.get(name, object()) != value:
            raise refused(name, "per-execution overrides are not offered: update the cluster instead.")
    pending = caller.service.executions.submit(cluster_id)
    return {
        "task_id": pending.run_id,
        "task_type": "engine_cluster_build",
        "status": "PENDING",
        "inputs": [pending.cluster_id],
        "outputs": [pending.run_id],
        "additional_data": {
            "run_id": pending.run_id,
            "cluster_id": pending.cluster_id,
            "dagster_run_id": pending.dagster_run_id,
            "status": pending.status,
        },  # fmt: skip
    }
