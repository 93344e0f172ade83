"""Where finished executions are announced, as a Dagster resource (``sensors.webhooks``). The URLs for
every configuration and the signing secret come through EnvVar (such URLs often hold a token; the secret
is never in a configuration, a result, run config or a log). Without a secret nothing is sent."""

import dagster as dg
from pydantic import Field

from cluster_pipeline.core.pipeline.webhooks import WebhookSettings


class WebhookResource(dg.ConfigurableResource):
    """Webhook targets, secret and limits. Give ``secret`` as ``EnvVar("CLUSTER_PIPELINE_WEBHOOK_SECRET")``."""

    urls: str | None = Field(None, description="Comma-separated URLs notified for every configuration.")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret; pass an EnvVar, never a literal.")
    timeout_seconds: float = Field(5.0, gt=0, description="Per request.")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per URL and execution.")
    backoff_seconds: float = Field(30.0, ge=0, description="Wait after a failed attempt; doubles per attempt.")
    max_backoff_seconds: float = Field(3600.0, ge=0, description="Longest wait between attempts.")
    max_tick_seconds: float = Field(30.0, gt=0, description="Attempts start only this long into a sensor tick.")
    lookback_seconds: float = Field(
        3600.0, ge=0, description="On its first tick, the sensor announces executions finished this recently."
    )

    def settings(self) -> WebhookSettings:
        return WebhookSettings(self.timeout_seconds, self.max_attempts, self.backoff_seconds, self.max_backoff_seconds)

    def shared_urls(self) -> list[str]:
        return [url.strip() for url in (self.urls or "").split(",") if url.strip()]
