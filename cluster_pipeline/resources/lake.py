"""The lake as a Dagster resource: a local folder by default, an S3 bucket through dagster-aws."""

from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from cluster_pipeline.core.lake import Lake, default_root
from cluster_pipeline.core.storage import S3Storage


class LakeResource(ConfigurableResource):
    """Where collections, configurations and ExecutionResults live.

    With ``s3_bucket`` set, objects go to that bucket through the nested dagster-aws ``S3Resource``
    (any S3 API: AWS, MinIO, moto); otherwise to ``root`` on local disk, by default
    ``$CLUSTER_PIPELINE_ROOT`` or ``./.cluster_data``.
    """

    root: str | None = Field(None, description="Local data folder; default $CLUSTER_PIPELINE_ROOT or ./.cluster_data")
    s3_bucket: str | None = Field(None, description="Bucket for an S3 lake; unset means local disk.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket.")
    s3: S3Resource | None = None

    def get_lake(self) -> Lake:
        if self.s3_bucket:
            client = (self.s3 or S3Resource()).get_client()
            return Lake(S3Storage(client, self.s3_bucket, self.s3_prefix))
        return Lake.local(self.root or default_root())
