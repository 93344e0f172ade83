"""Choosing the number of clusters: ``n_clusters: "auto"`` (``n_components`` for gaussian_mixture).

Each k in ``k_min..k_max`` is scored by the silhouette of a k-means partition (3 inits) of one
seeded sample of ``max(3,000, 50 · k_max)`` documents (faiss k-means, ``core.fit.kmeans``; the
silhouette on the same sample, ``core.quality.metrics``: at least 50 points per cluster keeps a sampled
silhouette unbiased, see PERF_NOTES); the best k wins, ties to the smaller. The configured
algorithm then runs once, with that k, on every document.

Why this criterion, measured on AG News (7,600 news texts, 4 topics, MiniLM-384):
- the silhouette curve peaks at k=3 (0.040; k=4 0.037) and falls to 0.026 at k=12 on the default
  sample (``benchmarks/quality.py``); on the whole set no k up to 20 beat k=3 either. k-means with
  k=3 scores V-measure 0.57 against the topics. On a 5-topic news set the same sweep picks 5
  (PERF_NOTES).
- the choice held for 5 sample seeds with samples of 3,000 and of 5,000 (the latter twice the time);
  with one k-means init per k it flipped between 3 and 4 from seed to seed.
- BIC, the textbook choice for Gaussian mixtures, kept falling from k=2 to k=12 on the same vectors
  (diagonal covariances in 384 dimensions reward every extra component), so it cannot choose; the
  silhouette of the mixtures' own partitions peaked at 3 like k-means'. One k-means sweep therefore
  chooses k for all five algorithms, at a fraction of the cost of sweeping each algorithm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster_pipeline.core.fit.kmeans import fit_kmeans
from cluster_pipeline.core.fit.options import KMeansEngine
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.quality.metrics import MIN_POINTS_PER_CLUSTER, silhouette_fast

AUTO_K_SAMPLE_SIZE = 3_000
CRITERION = "silhouette of k-means on a seeded sample"
AUTO_K_RANGE = ("k_min", "k_max")
# Measured on AG News: the silhouette of text embeddings peaks at few clusters and falls or stays
# flat beyond; no k from 13 to 20 beat the peak at 3, so a wider default range costs a k-means and a
# silhouette per k and changes nothing. Ask for more with k_max.
DEFAULT_K_MIN, DEFAULT_K_MAX = 2, 12


@dataclass(frozen=True)
class AutoK:
    """The sweep's outcome: the k chosen for ``parameter`` and the whole curve."""

    parameter: str
    chosen: int
    scores: dict[int, float]
    k_min: int
    k_max: int
    sample_size: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The ``auto_k`` record of the ExecutionResult (JSON keys are strings)."""
        return {
            "parameter": self.parameter,
            "chosen": self.chosen,
            "criterion": CRITERION,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "sample_size": self.sample_size,
            "scores": {str(k): round(score, 6) for k, score in self.scores.items()},
            "seconds": round(self.seconds, 3),
        }


def choose_k(
    space: np.ndarray,
    parameter: str,
    parameters: dict[str, Any],
    *,
    engine: KMeansEngine = "auto",
    progress: Progress | None = None,
) -> AutoK:
    """Sweep k over ``parameters``' ``k_min..k_max`` on a seeded sample of ``space``, the matrix the
    algorithm will run on (see the module doc); k stays below the sample size, and with too few
    documents to score any k, ``k_min`` is chosen."""
    progress = progress or Progress.silent()
    started = time.perf_counter()
    seed = parameters.get("random_state")
    seed = seed if isinstance(seed, int) else 0
    rng = np.random.default_rng(seed)
    n = len(space)
    k_min, k_max = int(parameters.get("k_min", DEFAULT_K_MIN)), int(parameters.get("k_max", DEFAULT_K_MAX))
    size = max(AUTO_K_SAMPLE_SIZE, MIN_POINTS_PER_CLUSTER * k_max)
    sample = space if n <= size else space[np.sort(rng.choice(n, size, replace=False))]
    k_max = min(k_max, len(sample) - 1)
    candidates = list(range(k_min, k_max + 1)) or [k_min]
    scores: dict[int, float] = {}
    for done, k in enumerate(candidates):
        progress.update("auto_k", done, len(candidates), note=f"k={k}", unit="values of k")
        if k >= len(sample):
            continue
        trial = {"n_clusters": k, "n_init": 3, "random_state": seed}
        labels = fit_kmeans(sample, trial, Progress.muted(), engine=engine).labels  # the bar is over k, not each fit
        if len(np.unique(labels)) >= 2:
            scores[k] = silhouette_fast(sample, labels)
    chosen = max(scores, key=lambda k: (scores[k], -k)) if scores else candidates[0]
    progress.update("auto_k", len(candidates), len(candidates), note=f"chose k={chosen}", unit="values of k")
    return AutoK(parameter, chosen, scores, k_min, k_max, len(sample), time.perf_counter() - started)
