from cluster_pipeline.resources.lake import LakeResource

__all__ = ["LakeResource"]
