"""``/v1/collections`` and the BYO upsert: collections of documents that bring their own vectors."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request

from cluster_pipeline.api.auth import Caller, JsonBody, OptionalBody, ReadCaller, WriteCaller, writer
from cluster_pipeline.api.errors import not_offered, refused
from cluster_pipeline.api.paging import Page, PageQuery
from cluster_pipeline.core.store.collections import CollectionInfo

router = APIRouter(tags=["collections"])
BYO_EXTRACTOR = {"feature_extractor_name": "byo", "version": "v1", "feature_extractor_id": "byo_v1"}
MAX_UPSERT_DOCUMENTS = 1000  # the SDK's limit
NOT_OFFERED = {"taxonomy_applications": "Taxonomies", "cluster_applications": "Cluster applications on collections",
               "alert_applications": "Alerts", "retriever_enrichments": "Retrievers", "retriever_transform": "Retrievers",
               "schedule": "Collection re-processing schedules"}  # fmt: skip


def collection_response(info: CollectionInfo) -> dict[str, Any]:
    """A collection as the SDK's ``CollectionResponse``: documents that bring their own vectors."""
    return {
        "collection_id": info.collection,
        "collection_name": info.collection,
        "description": info.description,
        "feature_extractor": BYO_EXTRACTOR,
        "source": {"type": "direct_upsert"},
        "metadata": info.metadata or None,
        "created_at": info.created_at,
        "document_count": info.num_documents,
        "vector_count": info.num_documents * len(info.features),
        "vector_indexes": None,
        "features": info.features,
        "metadata_columns": info.metadata_columns,
    }


@router.post("/v1/collections")
def create_collection(body: JsonBody, caller: WriteCaller) -> dict[str, Any]:
    source = (body.get("source") or {}).get("type", "direct_upsert")
    if source not in ("direct_upsert", "none"):
        raise not_offered(f"Collections fed from a {source!r} source (documents come through the BYO upsert)")
    extractor = (body.get("feature_extractor") or {}).get("feature_extractor_name")
    if extractor not in (None, "byo"):
        raise not_offered(f"Feature extractor {extractor!r} (documents bring their own vectors)")
    for name, feature in NOT_OFFERED.items():
        if body.get(name):
            raise not_offered(feature)
    for name in ("input_schema", "features", "embedding_task"):
        if body.get(name):
            raise refused(name, "documents bring their own vectors and fields; omit it.")
    if body.get("enabled") is False:
        raise refused("enabled", "collections always accept documents.")
    name = body.get("collection_name")
    if not isinstance(name, str) or not 3 <= len(name) <= 100:
        raise refused("collection_name", "3 to 100 letters, digits, '_' or '-'.")
    info = caller.service.collections.create(name, body.get("description"), body.get("metadata"))
    return collection_response(info)


def _listed(caller: Caller, page: Page, search: str | None) -> dict[str, Any]:
    infos = caller.service.collections.list_info()
    if search:
        infos = [i for i in infos if search.lower() in i.collection.lower()]
    shown = infos[page.offset : page.offset + page.limit]
    return {"results": [collection_response(i) for i in shown], "pagination": page.response(len(infos)),
            "total_count": len(infos)}  # fmt: skip


@router.post("/v1/collections/list")
def list_collections(page: PageQuery, caller: ReadCaller, body: OptionalBody = None) -> dict[str, Any]:
    body = body or {}
    if body.get("filters"):
        raise refused("filters", "filter collections with search (their names).")
    return _listed(caller, page.of(body), body.get("search"))


@router.get("/v1/collections")
def list_collections_get(page: PageQuery, caller: ReadCaller, search: str | None = None) -> dict[str, Any]:
    return _listed(caller, page, search)


@router.get("/v1/collections/{collection_identifier}")
def get_collection(collection_identifier: str, caller: ReadCaller) -> dict[str, Any]:
    return collection_response(caller.service.collections.info(collection_identifier))


@router.delete("/v1/collections/{collection_identifier}")
def delete_collection(collection_identifier: str, caller: WriteCaller) -> dict[str, Any]:
    removed = caller.service.collections.delete(collection_identifier)
    return {"success": True, "collection_id": collection_identifier, "documents_deleted": removed}


@router.get("/v1/collections/{collection_identifier}/documents/count")
def count_documents(collection_identifier: str, caller: ReadCaller) -> dict[str, Any]:
    info = caller.service.collections.info(collection_identifier)
    return {"collection_id": info.collection, "count": info.num_documents}


def _documents(caller: Caller, collection: str, page: Page, vectors: bool) -> dict[str, Any]:
    table, total = caller.service.collections.documents(collection, page.offset, page.limit, vectors=vectors)
    features = [name for name in table.column_names if pa.types.is_fixed_size_list(table.schema.field(name).type)]
    rows = []
    for row in table.to_pylist():
        vectors_of = {name: row.pop(name) for name in features}
        rows.append({**row, "collection_id": collection, **({"_vectors": vectors_of} if vectors else {})})
    return {"results": rows, "pagination": page.response(total), "total_documents": total}


@router.post("/v1/collections/{collection_identifier}/documents/list")
def list_documents(
    collection_identifier: str,
    page: PageQuery,
    caller: ReadCaller,
    body: OptionalBody = None,
    return_vectors: bool = False,
) -> dict[str, Any]:
    body = body or {}
    for name in ("filters", "sort", "search", "group_by", "select", "expand", "partition"):
        if body.get(name):
            raise refused(name, "documents are listed in collection order, a page at a time.")
    return _documents(caller, collection_identifier, page.of(body), bool(body.get("return_vectors", return_vectors)))


@router.get("/v1/collections/{collection_identifier}/documents")
def list_documents_get(
    collection_identifier: str, page: PageQuery, caller: ReadCaller, return_vectors: bool = False
) -> dict[str, Any]:
    return _documents(caller, collection_identifier, page, return_vectors)


@router.post("/v1/namespaces/{namespace_id}/documents/upsert")
def upsert_documents(namespace_id: str, request: Request, body: JsonBody) -> dict[str, Any]:
    """Add documents with their own vectors to a collection of ``namespace_id`` (the key must hold it)."""
    caller = writer(request, request.headers.get("authorization"), namespace_id)
    collection = body.get("collection_id")
    if not isinstance(collection, str):
        raise refused("collection_id", "name the collection the documents go to.")
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents or len(documents) > MAX_UPSERT_DOCUMENTS:
        raise refused("documents", f"1 to {MAX_UPSERT_DOCUMENTS} documents per call.")
    rows = [_row(i, document) for i, document in enumerate(documents)]
    report = caller.service.collections.upsert(collection, pa.Table.from_pylist(rows))
    return {"inserted": report.num_documents, "document_ids": [row["document_id"] for row in rows]}


def _row(index: int, document: Any) -> dict[str, Any]:
    """One BYO document as a collection row: its id, its dense vectors, its payload and metadata fields."""
    where = f"documents.{index}"
    if not isinstance(document, dict) or not isinstance(document.get("document_id"), str):
        raise refused(f"{where}.document_id", "every document needs a string document_id.")
    vectors = document.get("vectors")
    if not isinstance(vectors, dict) or not vectors:
        raise refused(f"{where}.vectors", "a map of vector name to a list of floats.")
    row: dict[str, Any] = {"document_id": document["document_id"]}
    for source in ("payload", "metadata"):
        for name, value in (document.get(source) or {}).items():
            if name in row or name in vectors:
                raise refused(f"{where}.{source}.{name}", "a field of that name is given twice.")
            row[name] = value
    for name, vector in vectors.items():
        if isinstance(vector, dict):
            raise not_offered("Sparse vectors")
        if not isinstance(vector, list) or not vector or any(isinstance(v, list) for v in vector):
            raise not_offered("Multi-vectors") if vector and isinstance(vector[0], list) else refused(
                f"{where}.vectors.{name}", "a non-empty list of floats.")  # fmt: skip
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in vector):
            raise refused(f"{where}.vectors.{name}", "finite numbers only.")
        row[name] = vector
    return row
