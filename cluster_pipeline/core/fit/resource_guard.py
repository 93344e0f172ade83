"""Estimate what a quadratic algorithm will cost before fitting, and refuse what cannot finish.

Agglomerative, spectral with a dense affinity, OPTICS, mean shift, HDBSCAN without a space tree
and DBSCAN with a wide ``eps`` grow with the *square* of the documents: agglomerative (Ward) on
20,000 documents needs about 3.4 GB and a minute and a half, on 100,000 about 85 GB. Rather than
letting such a fit run out of memory (killed by the kernel, nothing said), the execution fails at
once with the estimate and the ways out.

The models are ``bytes ≈ a·N²`` and ``seconds ≈ b·N²`` with ``a`` and ``b`` measured per
algorithm at 3,000 and 6,000 points of 384 dimensions on the 2-core reference machine (scikit-learn
1.9, hdbscan 0.8): orders of magnitude, not promises. DBSCAN's memory depends on how many pairs fall
within ``eps``, measured on a seeded sample of the data. Registry entries name their model here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cluster_pipeline.core.errors import ResourceLimitError
from cluster_pipeline.core.fit.options import ClusteringOptions

# (bytes, seconds) a fit needs beyond its matrix; None: it grows linearly
Cost = tuple[float, float] | None
CostModel = Callable[[dict[str, Any], np.ndarray], Cost]
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
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


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


def _pairs(space: np.ndarray) -> float:
    return float(len(space)) ** 2


def agglomerative_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    if parameters.get("connectivity") is not None:
        return None
    if parameters.get("linkage", "ward") == "single":
        return 0.0, 1.5e-7 * _pairs(space)
    # scipy's condensed float64 distances and the linkage's working copy
    return 8.5 * _pairs(space) + 8.0 * space.size, 2.5e-7 * _pairs(space)


def spectral_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    if parameters.get("affinity", "rbf") in DENSE_AFFINITY_FREE:
        return 0.0, 7e-8 * _pairs(space)  # brute-force nearest neighbours
    return 36.0 * _pairs(space), 3.4e-7 * _pairs(space)  # dense N×N affinity, Laplacian, eigensolver copies


def optics_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    return 0.0, 4e-6 * _pairs(space)  # reachability distances, one point at a time


def mean_shift_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    return 0.0, 2.2e-7 * _pairs(space)  # bandwidth estimate: neighbours of every point


def hdbscan_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    if parameters.get("algorithm") == "generic":
        return 16.0 * _pairs(space), 4e-7 * _pairs(space)
    if space.shape[1] > HDBSCAN_TREE_MAX_DIMENSIONS:
        return 0.0, 4e-7 * _pairs(space)
    return None


def dbscan_cost(parameters: dict[str, Any], space: np.ndarray) -> Cost:
    fraction, pairs = _pair_fraction_within(space, float(parameters.get("eps", 0.5))), _pairs(space)
    return BYTES_PER_NEIGHBOUR * fraction * pairs, 1e-8 * pairs + 8e-8 * fraction * pairs


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
    estimate: FitEstimate | None, space: np.ndarray, options: ClusteringOptions, linear: Sequence[str]
) -> FitEstimate | None:
    """Refuse a fit whose ``estimate`` exceeds available memory, ``memory_budget_mb`` (counting the
    matrix already loaded) or ``max_fit_seconds``, naming the ``linear`` algorithms as a way out;
    return the estimate (None for linear algorithms)."""
    if estimate is None:
        return None
    budget, max_seconds = options.memory_budget_mb, options.max_fit_seconds
    problems = []
    if budget is not None and estimate.memory_bytes + space.nbytes > budget * 2**20:
        problems.append(f"the configuration's memory_budget_mb is {budget}")
    free = available_memory()
    if free is not None and estimate.memory_bytes > free:
        problems.append(f"this machine has {format_bytes(free)} available")
    if max_seconds is not None and estimate.seconds > max_seconds:
        problems.append(f"the configuration's max_fit_seconds is {max_seconds:g}")
    if problems:
        suggested = _largest_sample(estimate, space.nbytes, free, options)
        sample_hint = (
            f"cluster a sample: set sample_size (e.g. {suggested:,}; every other document joins the "
            "cluster of its nearest sampled one)"
            if options.sample_size is None
            else f"lower sample_size (now {options.sample_size:,}; {suggested:,} would fit)"
        )
        raise ResourceLimitError(
            f"Not started: {estimate.algorithm} on {estimate.n:,} documents × {estimate.d} dimensions would need "
            f"{estimate.describe()} (its cost grows with the square of the documents), but "
            f"{' and '.join(problems)}. Ways out: {sample_hint}; or use an algorithm that grows linearly "
            f"({', '.join(linear)}); or give it more memory or time."
        )
    return estimate


def _largest_sample(estimate: FitEstimate, matrix_bytes: int, free: int | None, options: ClusteringOptions) -> int:
    """The largest sample the limits allow (costs scale with N², so by the square root of the ratio)."""
    ratios = [1.0]
    if estimate.memory_bytes:
        limits = [free] if free is not None else []
        if options.memory_budget_mb is not None:
            limits.append(options.memory_budget_mb * 2**20 - matrix_bytes)
        if limits:
            ratios.append(max(min(limits), 0) / estimate.memory_bytes)
    if options.max_fit_seconds is not None and estimate.seconds:
        ratios.append(options.max_fit_seconds / estimate.seconds)
    size = int(estimate.n * min(ratios) ** 0.5 * 0.8)  # a margin: the models are estimates
    return max(size // 1000 * 1000, min(estimate.n, 1000))
