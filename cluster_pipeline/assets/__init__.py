from cluster_pipeline.assets.assignment import new_document_assignments
from cluster_pipeline.assets.clustering import CLUSTERING_ASSETS, clustering_assets

__all__ = ["CLUSTERING_ASSETS", "clustering_assets", "new_document_assignments"]
