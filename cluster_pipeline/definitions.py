"""The single Definitions object of the code location.

Environments are resource choices, picked by ``DAGSTER_DEPLOYMENT`` (``deployment.py``): the lake on
disk (``local``, the default) or in a bucket (``s3``). The assets never know which, and hand nothing to
an IO manager (each run's data is its ExecutionResult in the lake). Every run executes in process: the
clustering is one step, and a step process would only add a Python start-up and imports (the UI's
default multiprocess executor cost ~25 s a run when the clustering was five steps).
"""

import os
from typing import Any

import dagster as dg

from cluster_pipeline.assets import CLUSTERING_ASSETS, new_document_assignments
from cluster_pipeline.core.embed.options import BASE_URL_ENV, EmbeddingSettings
from cluster_pipeline.deployment import BUCKET_ENV, LAKE_PREFIX, current_deployment, s3_resource
from cluster_pipeline.jobs import assignment_job, cluster_execution_job
from cluster_pipeline.resources import EmbeddingResource, LakeResource, LLMResource, WebhookResource
from cluster_pipeline.schedules import nightly_schedule
from cluster_pipeline.sensors import SENSORS


def _set_env_var(name: str) -> dg.EnvVar | None:
    """``EnvVar(name)`` (the value stays out of run config and the UI) if the variable is set, else None:
    an EnvVar of an unset variable fails the run instead of leaving labels offline or webhooks unsent."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def llm_resource() -> LLMResource:
    return LLMResource(
        model=os.environ.get("CLUSTER_PIPELINE_LLM_MODEL") or "gpt-4o-mini",
        base_url=_set_env_var("OPENAI_BASE_URL"),
        api_key=_set_env_var("OPENAI_API_KEY"),
    )


def embedding_resource() -> EmbeddingResource:
    """The text embeddings ``ingest --embed`` uses (``EmbeddingSettings.from_environment``), the key through EnvVar."""
    chosen = EmbeddingSettings.from_environment()
    return EmbeddingResource(
        provider=chosen.provider,
        model=chosen.model,
        base_url=_set_env_var(BASE_URL_ENV) or _set_env_var("OPENAI_BASE_URL"),
        api_key=_set_env_var("OPENAI_API_KEY"),
    )


def webhook_resource() -> WebhookResource:
    return WebhookResource(
        urls=_set_env_var("CLUSTER_PIPELINE_WEBHOOK_URLS"), secret=_set_env_var("CLUSTER_PIPELINE_WEBHOOK_SECRET")
    )


def resources_for(deployment: str) -> dict[str, Any]:
    lake = LakeResource()
    if deployment == "s3":  # dagster-aws (a second of imports) only for an S3 lake
        lake = LakeResource(s3=s3_resource(), s3_bucket=dg.EnvVar(BUCKET_ENV), s3_prefix=LAKE_PREFIX)
    return {"lake": lake, "llm": llm_resource(), "embeddings": embedding_resource(), "webhooks": webhook_resource()}


def build_definitions(deployment: str | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*CLUSTERING_ASSETS, new_document_assignments],
        jobs=[cluster_execution_job, assignment_job],
        sensors=SENSORS,
        schedules=[nightly_schedule],
        executor=dg.in_process_executor,
        resources=resources_for(current_deployment(deployment)),
    )


defs = build_definitions()
