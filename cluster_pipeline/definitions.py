"""The single Definitions object of the code location.

Environments are resource choices, picked by ``DAGSTER_DEPLOYMENT`` (``deployment.py``): ``local``
(default) keeps the lake on disk; ``s3`` puts it in a bucket through dagster-aws, configured by
environment variables. The assets never know which, and hand nothing to an IO manager (each run's
data is its ExecutionResult in the lake), so neither deployment needs one.

Every run executes in process (``executor``): the clustering is one step, and a step process would
only add a Python start-up and imports (the UI's default multiprocess executor cost ~25 s a run
when the clustering was five steps). So a materialization launched from the UI, a sensor or a
schedule runs like ``cluster-pipeline execute``.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from cluster_pipeline.assets import CLUSTERING_ASSETS, new_document_assignments
from cluster_pipeline.deployment import BUCKET_ENV, LAKE_PREFIX, current_deployment, s3_resource
from cluster_pipeline.jobs import assignment_job, cluster_execution_job
from cluster_pipeline.resources import LakeResource, LLMResource, WebhookResource
from cluster_pipeline.schedules import nightly_schedule
from cluster_pipeline.sensors import SENSORS


def llm_resource() -> LLMResource:
    """The labeling LLM; EnvVar keeps the key out of run config and the UI. Unset variables stay None,
    since an EnvVar of an unset variable fails the run instead of leaving labels offline."""
    return LLMResource(
        model=os.environ.get("CLUSTER_PIPELINE_LLM_MODEL") or "gpt-4o-mini",
        base_url=dg.EnvVar("OPENAI_BASE_URL") if os.environ.get("OPENAI_BASE_URL") else None,
        api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None,
    )


def webhook_resource() -> WebhookResource:
    """Webhook URLs and secret through EnvVar, as for the LLM key (unset variables stay None)."""
    return WebhookResource(
        urls=dg.EnvVar("CLUSTER_PIPELINE_WEBHOOK_URLS") if os.environ.get("CLUSTER_PIPELINE_WEBHOOK_URLS") else None,
        secret=dg.EnvVar("CLUSTER_PIPELINE_WEBHOOK_SECRET")
        if os.environ.get("CLUSTER_PIPELINE_WEBHOOK_SECRET")
        else None,
    )


def resources_for(deployment: str) -> dict[str, Any]:
    if deployment == "local":
        return {"lake": LakeResource(), "llm": llm_resource(), "webhooks": webhook_resource()}
    if deployment == "s3":
        return {
            "lake": LakeResource(s3=s3_resource(), s3_bucket=dg.EnvVar(BUCKET_ENV), s3_prefix=LAKE_PREFIX),
            "llm": llm_resource(),
            "webhooks": webhook_resource(),
        }
    raise ValueError(f"Unknown DAGSTER_DEPLOYMENT {deployment!r}: use 'local' or 's3'.")


def build_definitions(deployment: str | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*CLUSTERING_ASSETS, new_document_assignments],
        jobs=[cluster_execution_job, assignment_job],
        sensors=SENSORS,
        schedules=[nightly_schedule],
        executor=dg.in_process_executor,
        resources=resources_for(deployment or current_deployment()),
    )


defs = build_definitions()
