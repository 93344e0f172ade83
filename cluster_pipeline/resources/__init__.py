from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.llm import LLMResource
from cluster_pipeline.resources.webhooks import WebhookResource

__all__ = ["LLMResource", "LakeResource", "WebhookResource"]
