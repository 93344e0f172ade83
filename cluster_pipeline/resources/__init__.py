from cluster_pipeline.resources.embeddings import EmbeddingResource
from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.llm import LLMResource
from cluster_pipeline.resources.webhooks import WebhookResource

__all__ = ["EmbeddingResource", "LLMResource", "LakeResource", "WebhookResource"]
