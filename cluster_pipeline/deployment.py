"""The deployment switch: where the lake lives, read from the environment.

``DAGSTER_DEPLOYMENT=local`` (the default) keeps the lake in a folder (``$CLUSTER_PIPELINE_ROOT``);
``s3`` under ``lake/`` in ``$CLUSTER_PIPELINE_S3_BUCKET``, at ``CLUSTER_PIPELINE_S3_ENDPOINT_URL`` if set
(MinIO or any S3 API; boto3's own ``AWS_ENDPOINT_URL_S3`` sets it for every S3 client of the process,
Dagster's compute logs included). The code location and the CLI both read it here, so
``cluster-pipeline ingest`` writes where the deployment's sensors look.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.store.lake import Lake

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource

DEPLOYMENT_ENV = "DAGSTER_DEPLOYMENT"
BUCKET_ENV = "CLUSTER_PIPELINE_S3_BUCKET"
ENDPOINT_ENV = "CLUSTER_PIPELINE_S3_ENDPOINT_URL"
LAKE_PREFIX = "lake"


def current_deployment(value: str | None = None) -> str:
    """``local`` or ``s3``: ``value``, else ``$DAGSTER_DEPLOYMENT``."""
    value = value or os.environ.get(DEPLOYMENT_ENV) or "local"
    if value not in ("local", "s3"):
        raise ConfigurationError(
            f"Unknown {DEPLOYMENT_ENV}={value!r}: use 'local' (the lake in a folder) or 's3' "
            f"(the lake in ${BUCKET_ENV})."
        )
    return value


def s3_resource() -> S3Resource:
    """dagster-aws's S3 client resource: endpoint and region from the environment, credentials from boto3's chain."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None, region_name=os.environ.get("AWS_REGION") or None
    )


def environment_lake(root: str | None = None) -> Lake:
    """The lake of this environment's deployment: what the CLI reads and writes (``root``, the CLI's
    ``--root``, names a local folder and so only applies to the local deployment)."""
    if current_deployment() == "local":
        return Lake.local(root) if root else Lake.local()
    if not (bucket := os.environ.get(BUCKET_ENV)):
        raise ConfigurationError(f"{DEPLOYMENT_ENV}=s3 needs the bucket of the lake: set {BUCKET_ENV}.")
    if root:
        raise ConfigurationError(
            f"--root names a local data folder, but {DEPLOYMENT_ENV}=s3 keeps the lake in "
            f"s3://{bucket}/{LAKE_PREFIX}/: drop --root, or unset {DEPLOYMENT_ENV} for a local lake."
        )
    from cluster_pipeline.resources.lake import LakeResource

    return LakeResource(s3=s3_resource(), s3_bucket=bucket, s3_prefix=LAKE_PREFIX).get_lake()
