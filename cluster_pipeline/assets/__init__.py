from cluster_pipeline.assets.clustering import (
    CLUSTERING_ASSETS,
    cluster_assignments,
    cluster_labels,
    cluster_quality,
    collection_embeddings,
    execution_result,
)

__all__ = [
    "CLUSTERING_ASSETS",
    "cluster_assignments",
    "cluster_labels",
    "cluster_quality",
    "collection_embeddings",
    "execution_result",
]
