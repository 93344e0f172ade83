"""Estimate what a quadratic algorithm will cost before fitting, and refuse what cannot finish.

Agglomerative, spectral with a dense affinity, OPTICS, mean shift, HDBSCAN without a space tree
and DBSCAN with a wide ``eps`` grow with the *square* of the documents: agglomerative (Ward) on
20,000 documents needs about 3.4 GB and a minute and a half, on 100,000 about 85 GB. Rather than
letting such a fit run out of memory (killed by the kernel, nothing said), the execution fails at
once with the estimate and the ways out.

The models are ``bytes ≈ a·N²`` and ``seconds ≈ b·N²`` with ``a`` and ``b`` measured per
algorithm at 3,000 and 6,000 points of 384 dimensions on the 2-core reference machine (scikit-learn
1.9, hdbscan 0.8): orders of magnitude, not promises. DBSCAN's
memory depends on how many pairs fall within ``eps``, measured on a seeded sample of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster_pipeline.core.errors import ResourceLimitError

LINEAR_ALGORITHMS = ("kmeans", "minibatch_kmeans", "gaussian_mixture", "birch")
DENSE_AFFINITY_FREE = ("nearest_neighbors", "precomputed_nearest_neighbors")
# hdbscan builds space trees (boruvka) only in low dimension; above this it runs Prim's algorithm on
# all pairs (quadratic time, linear memory).
HDBSCAN_TREE_MAX_DIMENSIONS = 60
DBSCAN_PROBE_POINTS = 1_000
BYTES_PER_NEIGHBOUR = 27  # DBSCAN keeps an index and a distance array per neighbour, plus object overhead


@dataclass(frozen=True)
class FitEstimate:
    """What fitting ``algorithm`` on an ``n`` × ``d`` matrix should cost, beyond the matrix itself."""

    algorithm: str
    n: int
    d: int
    memory_bytes: int
    seconds: float

    def describe(self) -> str:
        if not self.memory_bytes:
            return f"about {format_seconds(self.seconds)} (memory grows linearly)"
        return f"about {format_bytes(self.memory_bytes)} and {format_seconds(self.seconds)}"


def format_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit == "GB" else f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def format_seconds(value: float) -> str:
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _pair_fraction_within(space: np.ndarray, eps: float, seed: int = 0) -> float:
    """Share of document pairs closer than ``eps``, on a seeded sample (one small float32 GEMM)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(space), min(len(space), DBSCAN_PROBE_POINTS), replace=False)
    sample = np.asarray(space[np.sort(rows)], dtype=np.float32)
    norms = np.einsum("ij,ij->i", sample, sample)
    squared = norms[:, None] + norms[None, :] - 2.0 * (sample @ sample.T)
    return float((squared <= eps * eps).mean())


def estimate_fit(algorithm: str, parameters: dict[str, Any], space: np.ndarray) -> FitEstimate | None:
    """The cost of a quadratic fit on ``space`` (the prepared matrix); None when it grows linearly."""
    n, d = space.shape
    pairs = float(n) * float(n)
    memory, seconds = 0.0, 0.0
    if algorithm in LINEAR_ALGORITHMS:
        return None
    if algorithm == "agglomerative":
        if parameters.get("connectivity") is not None:
            return None
        if parameters.get("linkage", "ward") == "single":
            seconds = 1.5e-7 * pairs
        else:  # scipy's condensed float64 distances and the linkage's working copy
            memory, seconds = 8.5 * pairs + 8.0 * n * d, 2.5e-7 * pairs
    elif algorithm == "spectral":
        if parameters.get("affinity", "rbf") in DENSE_AFFINITY_FREE:
            seconds = 7e-8 * pairs  # brute-force nearest neighbours
        else:  # dense N×N affinity, Laplacian and eigensolver copies
            memory, seconds = 36.0 * pairs, 3.4e-7 * pairs
    elif algorithm == "optics":
        seconds = 4e-6 * pairs  # reachability distances, one point at a time
    elif algorithm == "mean_shift":
        seconds = 2.2e-7 * pairs  # bandwidth estimate: neighbours of every point
    elif algorithm == "hdbscan":
        if parameters.get("algorithm") == "generic":
            memory, seconds = 16.0 * pairs, 4e-7 * pairs
        elif d > HDBSCAN_TREE_MAX_DIMENSIONS:
            seconds = 4e-7 * pairs
        else:
            return None
    elif algorithm == "dbscan":
        fraction = _pair_fraction_within(space, float(parameters.get("eps", 0.5)))
        memory, seconds = BYTES_PER_NEIGHBOUR * fraction * pairs, 1e-8 * pairs + 8e-8 * fraction * pairs
    else:
        return None
    return FitEstimate(algorithm, n, d, int(memory), seconds)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2 memory limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and available is not None:
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def check_fit_resources(
    algorithm: str,
    parameters: dict[str, Any],
    space: np.ndarray,
    *,
    memory_budget_mb: int | None = None,
    max_fit_seconds: float | None = None,
    sample_size: int | None = None,
) -> FitEstimate | None:
    """Refuse a fit whose estimate exceeds available memory, ``memory_budget_mb`` (counting the
    matrix already loaded) or ``max_fit_seconds``; return the estimate (None for linear algorithms)."""
    estimate = estimate_fit(algorithm, parameters, space)
    if estimate is None:
        return None
    problems = []
    if memory_budget_mb is not None and estimate.memory_bytes + space.nbytes > memory_budget_mb * 2**20:
        problems.append(f"the configuration's memory_budget_mb is {memory_budget_mb}")
    free = available_memory()
    if free is not None and estimate.memory_bytes > free:
        problems.append(f"this machine has {format_bytes(free)} available")
    if max_fit_seconds is not None and estimate.seconds > max_fit_seconds:
        problems.append(f"the configuration's max_fit_seconds is {max_fit_seconds:g}")
    if problems:
        suggested = _largest_sample(algorithm, parameters, space, estimate, free, memory_budget_mb, max_fit_seconds)
        sample_hint = (
            f"cluster a sample: set sample_size (e.g. {suggested:,}; every other document joins the "
            "cluster of its nearest sampled one)"
            if sample_size is None
            else f"lower sample_size (now {sample_size:,}; {suggested:,} would fit)"
        )
        raise ResourceLimitError(
            f"Not started: {algorithm} on {estimate.n:,} documents × {estimate.d} dimensions would need "
            f"{estimate.describe()} (its cost grows with the square of the documents), but "
            f"{' and '.join(problems)}. Ways out: {sample_hint}; or use an algorithm that grows linearly "
            "(kmeans, minibatch_kmeans, birch, gaussian_mixture); or give it more memory or time."
        )
    return estimate


def _largest_sample(
    algorithm: str,
    parameters: dict[str, Any],
    space: np.ndarray,
    estimate: FitEstimate,
    free: int | None,
    memory_budget_mb: int | None,
    max_fit_seconds: float | None,
) -> int:
    """The largest sample the limits allow (costs scale with N², so by the square root of the ratio)."""
    ratios = [1.0]
    if estimate.memory_bytes:
        limits = [free] if free is not None else []
        if memory_budget_mb is not None:
            limits.append(memory_budget_mb * 2**20 - space.nbytes)
        if limits:
            ratios.append(max(min(limits), 0) / estimate.memory_bytes)
    if max_fit_seconds is not None and estimate.seconds:
        ratios.append(max_fit_seconds / estimate.seconds)
    size = int(estimate.n * min(ratios) ** 0.5 * 0.8)  # a margin: the models are estimates
    return max(size // 1000 * 1000, min(estimate.n, 1000))
