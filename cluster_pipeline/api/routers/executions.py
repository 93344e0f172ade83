"""``/v1/clusters/{cluster_id}/executions``: the latest, one by run, the history (filters, sort, paging,
totals, stats), cancel, cluster renames and run names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cluster_pipeline.api.auth import Caller, JsonBody, OptionalBody, ReadCaller, WriteCaller
from cluster_pipeline.api.errors import refused
from cluster_pipeline.api.paging import PageQuery
from cluster_pipeline.api.shapes import execution_result, filters_of
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.ids import is_cluster_id
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.service import HistoryQuery

router = APIRouter(prefix="/v1/clusters/{cluster_id}/executions", tags=["cluster executions"])


def _cluster_id(caller: Caller, reference: str) -> str:
    """The ``clust_…`` id a path names (a configuration deleted with its history kept: its id)."""
    try:
        return caller.service.configurations.get(reference).cluster_id
    except NotFoundError:
        if is_cluster_id(reference):
            return reference
        raise


def _execution(caller: Caller, reference: str, run_id: str) -> ExecutionResult:
    """The execution ``run_id`` of the configuration ``reference`` (another's answers as absent)."""
    cluster_id = _cluster_id(caller, reference)
    result = caller.service.executions.get(run_id)
    if result.cluster_id != cluster_id:
        raise NotFoundError(f"Execution {run_id!r} not found for cluster {reference!r}.")
    return result


@router.get("")
def latest_execution(cluster_id: str, caller: ReadCaller, include_vectors: bool = False) -> dict[str, Any]:
    return execution_result(caller.service.executions.latest(cluster_id))


@router.post("/list")
def list_executions(cluster_id: str, page: PageQuery, caller: ReadCaller, body: OptionalBody = None) -> dict[str, Any]:
    body = body or {}
    page = page.of(body)
    sort = body.get("sort") or {}
    query = HistoryQuery(
        sort_by=sort.get("field", "created_at"),
        descending=sort.get("direction", "desc") != "asc",
        limit=page.limit,
        offset=page.offset,
        search=body.get("search"),
    )
    filters = filters_of(body.get("filters"), "filters")
    listed = caller.service.executions.list(cluster_id, query, filter=filters, include_total=True)
    results = [execution_result(r) for r in listed.results]
    finished = [r for r in listed.results if r.completed_at is not None]
    seconds = [(r.completed_at - r.created_at).total_seconds() for r in finished if r.completed_at]
    stats = listed.stats or {}
    return {
        "results": results,
        "pagination": page.response(listed.total if page.include_total else None, listed.next_cursor),
        "total_count": listed.total or 0,
        "stats": {
            "total_executions": listed.total or 0,
            "executions_by_status": stats.get("by_status", {}),
            "avg_execution_time_ms": round(1000 * sum(seconds) / len(seconds), 3) if seconds else 0.0,
            "total_documents_clustered": sum(r.num_points for r in listed.results),
            "avg_num_clusters": round(sum(r.num_clusters for r in finished) / len(finished), 3) if finished else 0.0,
            "mean_silhouette": stats.get("mean_silhouette"),
        },
    }


@router.get("/{run_id}")
def get_execution(cluster_id: str, run_id: str, caller: ReadCaller, include_vectors: bool = False) -> dict[str, Any]:
    return execution_result(_execution(caller, cluster_id, run_id))


@router.post("/{run_id}/cancel")
def cancel_execution(cluster_id: str, run_id: str, caller: WriteCaller) -> dict[str, Any]:
    _execution(caller, cluster_id, run_id)
    return execution_result(caller.service.executions.cancel(run_id))


@router.patch("/{run_id}/labels")
def patch_labels(cluster_id: str, run_id: str, body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    labels = body.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(v, str | None) for v in labels.values()):
        raise refused("labels", "a map of cluster id (cl_0, …) to its new label.")
    _execution(caller, cluster_id, run_id)
    result = caller.service.executions.rename_clusters(run_id, labels)
    return {"cluster_id": result.cluster_id, "run_id": result.run_id, "label_overrides": result.label_overrides or {}}


@router.patch("/{run_id}/name")
def patch_run_name(cluster_id: str, run_id: str, body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    if not isinstance(body.get("run_name"), str):
        raise refused("run_name", "a string (empty clears the name).")
    _execution(caller, cluster_id, run_id)
    result = caller.service.executions.name_run(run_id, body["run_name"])
    return {"cluster_id": result.cluster_id, "run_id": result.run_id, "run_name": result.run_name}
