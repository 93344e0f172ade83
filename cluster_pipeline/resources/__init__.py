from cluster_pipeline.resources.lake import LakeResource
from cluster_pipeline.resources.llm import LLMResource

__all__ = ["LLMResource", "LakeResource"]
