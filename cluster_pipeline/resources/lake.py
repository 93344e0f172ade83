"""The lake as a Dagster resource: a local folder by default, an S3 bucket through dagster-aws."""

import dagster as dg
from pydantic import Field

from cluster_pipeline.core.store.lake import Lake, default_root
from cluster_pipeline.core.store.storage import S3Storage


class LakeResource(dg.ConfigurableResource):
    """Where collections, configurations and ExecutionResults live: with ``s3_bucket`` set, that bucket
    through the nested dagster-aws ``S3Resource`` (any S3 API), else ``root`` on local disk. dagster-aws
    is imported only for an S3 lake: a second of start-up (boto3) a local run would pay for nothing."""

    root: str | None = Field(None, description="Local data folder; default $CLUSTER_PIPELINE_ROOT or ./.cluster_data")
    s3_bucket: str | None = Field(None, description="Bucket for an S3 lake; unset means local disk.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket.")
    s3: dg.ConfigurableResource | None = Field(None, description="A dagster_aws.s3.S3Resource (endpoint, region).")

    def get_lake(self) -> Lake:
        if not self.s3_bucket:
            return Lake.local(self.root or default_root())
        from dagster_aws.s3 import S3Resource

        return Lake(S3Storage((self.s3 or S3Resource()).get_client(), self.s3_bucket, self.s3_prefix))
