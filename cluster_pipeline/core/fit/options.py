"""What the fit stage is told: the clustering options and the reduction options.

A configuration stores them as flat fields of its JSON and hands the fit ``config.clustering``, never
the rest of itself; what an algorithm accepts is its registry entry's to check (``core.fit.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KMeansEngine = Literal["auto", "faiss", "sklearn"]


class ReductionOptions(BaseModel):
    """Dimensionality reduction before the algorithm runs (``core.fit.reduction``).

    ``auto``: above 50 dimensions, the algorithm's own (``AlgorithmSpec.default_reduction``: UMAP for
    density-based algorithms, PCA to 10 dimensions for mean_shift); none for the others, or below.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["auto", "umap", "pca", "none"] = "auto"
    n_components: int | None = Field(None, ge=1, le=100, description="Dimensions kept; default 5 (umap), 10 (pca).")
    n_neighbors: int = Field(
        15,
        ge=2,
        le=200,
        description="UMAP's neighbourhood: larger keeps more global structure, smaller finer topics "
        "(15 is UMAP's and BERTopic's default; 30 gave the same clusters on AG News).",
    )
    min_dist: float = Field(0.0, ge=0.0, le=1.0, description="UMAP's packing: 0 keeps dense groups dense.")
    fit_sample_size: int = Field(
        20_000,
        ge=100,
        description="UMAP is fitted on a seeded sample of this many documents; every other document is placed "
        "from its nearest sampled neighbours, as UMAP's own transform starts.",
    )
    random_state: int = Field(0, description="Seed of UMAP, its sample and PCA's randomised solver.")


@dataclass(frozen=True, kw_only=True)
class ClusteringOptions:
    """How to cluster: the algorithm, its parameters (scikit-learn / hdbscan names), and what happens
    around the fit; each field is documented on the configuration that stores it."""

    algorithm: str = "kmeans"
    parameters: dict[str, Any] = field(default_factory=dict)
    normalize: bool = True
    reduction: ReductionOptions = field(default_factory=ReductionOptions)
    sample_size: int | None = None
    max_clusters: int | None = None
    reassign_noise: bool = False
    centroid_method: Literal["mean", "median", "medoid"] = "mean"
    kmeans_engine: KMeansEngine = "auto"
    hdbscan_backend: Literal["auto", "fast_hdbscan", "hdbscan", "sklearn"] = "auto"
    memory_budget_mb: int | None = None
    max_fit_seconds: float | None = None
