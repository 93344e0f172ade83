"""The HTTP API: Mixpeek's clustering routes, under ``/v1``, over the application service.

The process holds no job state: an execution is a Dagster run of the configuration's partition, queued
on the instance (the daemon starts it); every answer is read from the lake and Dagster's run storage.
``cluster-pipeline serve`` runs it on uvicorn; ``/openapi.json`` and ``/docs`` describe it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request

from cluster_pipeline.api.auth import Keys
from cluster_pipeline.api.errors import install_error_handlers, not_offered
from cluster_pipeline.api.limits import BodySizeLimit, RateLimiter
from cluster_pipeline.api.routers import clusters, collections, executions, triggers
from cluster_pipeline.core.store.api_keys import ApiKeyStore
from cluster_pipeline.service import Service

RATE_ENV = "CLUSTER_PIPELINE_API_RATE_LIMIT"  # requests a second per key (bursts of twice that)
BODY_LIMIT_ENV = "CLUSTER_PIPELINE_API_MAX_BODY_BYTES"
DEFAULT_RATE = 100.0
DEFAULT_BODY_LIMIT = 32 * 2**20  # a BYO batch of 1,000 documents of 1,536 floats as JSON is about 20 MiB
# what Mixpeek's API offers beside clustering, answered 501 (never 404): the SDK's resource paths
NOT_OFFERED = {"buckets": "Buckets", "taxonomies": "Taxonomies", "retrievers": "Retrievers",
               "feature-extractors": "Feature extractors", "features": "Feature search", "tasks": "Tasks",
               "agents": "Agents", "alerts": "Alerts", "batches": "Batches", "webhooks": "Webhooks",
               "organizations": "Organizations", "templates": "Templates", "analytics": "Analytics"}  # fmt: skip


def create_app(root: str | None = None) -> FastAPI:
    """The API over the deployment's lake (``root``, or ``$CLUSTER_PIPELINE_ROOT``, or S3) and instance."""
    service = Service.from_environment(root)
    app = FastAPI(title="cluster_pipeline", version="1", description=__doc__)
    app.state.service = service
    app.state.keys = Keys(ApiKeyStore(service.scope.lake.storage))
    rate = float(os.environ.get(RATE_ENV) or DEFAULT_RATE)
    app.state.limiter = RateLimiter(rate, max(1, int(2 * rate)))
    install_error_handlers(app)
    for router in (triggers.router, clusters.router, executions.router, collections.router):
        app.include_router(router)

    @app.api_route(
        "/v1/{resource}/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    @app.api_route("/v1/{resource}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def not_offered_route(request: Request, resource: str) -> None:
        raise not_offered(NOT_OFFERED.get(resource) or f"{request.method} {request.url.path}")

    @app.on_event("shutdown")
    def close() -> None:
        service.close()

    limit = int(os.environ.get(BODY_LIMIT_ENV) or DEFAULT_BODY_LIMIT)
    app.add_middleware(BodySizeLimit, limit=limit)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory (``cluster-pipeline serve``): the data root from ``$CLUSTER_PIPELINE_ROOT``."""
    return create_app(os.environ.get("CLUSTER_PIPELINE_ROOT") and str(Path(os.environ["CLUSTER_PIPELINE_ROOT"])))
