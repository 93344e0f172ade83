"""K-means at GEMM speed: trained on a seeded sample sized by k, then a few passes over every row.

Measured on this project's 2-core machine (shared/PERF_NOTES.md): scikit-learn's ``KMeans`` spends
most of a large fit in its float64 k-means++ (100k × 384, k=100: 8.3 s); faiss's Lloyd iterations
run at the machine's float32 GEMM speed but it seeds by random sampling, which ends ~1.8 % above
scikit-learn's inertia; and Lloyd over every row of a large collection costs a GEMM pass per
iteration (1M × 384, k=100: ~0.7 s) where the centres stopped moving long before. So the faiss
engine here runs ``n_init`` starts (our float32 k-means++, then faiss Lloyd) on a seeded sample of
``max(5,000, 50·k)`` rows, continues the best with faiss Lloyd to convergence on a seeded sample of
``TRAIN_ROWS_PER_CLUSTER`` (256, faiss's own rule) rows per centre, then passes over every row: each
assigns every row to its nearest centre by one blocked float32 GEMM and sums the members, and the
members' means are the next centres (``lloyd_passes``). Passes stop when the means gain less than
``RELATIVE_TOLERANCE`` of the objective, after ``MAX_FULL_PASSES`` at most; the last assignment is
the clustering and its members' means the centres. On 1M blobs (k=100) one pass ended within 0.05 %
of the inertia of Lloyd run to convergence on every row, in a tenth of the time. The passes take
their rows from any source of blocks, so a collection streamed from its files (``core.fit.streaming``)
is fitted by the same training and passes as one in memory.

The benchmark checks the result against scikit-learn's default ``KMeans`` (inertia within 0.5 %)
and faiss's own all-rows training (time). faiss splits empty clusters and is deterministic for a
seed, whatever its thread count. Without faiss, or with ``engine="sklearn"`` or a custom ``init``,
scikit-learn fits instead: the same sampled k-means++ starts give its ``KMeans`` its ``init``, and
above ``MINIBATCH_ABOVE`` rows ``MiniBatchKMeans`` runs (a full scikit-learn Lloyd is too slow there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cluster_pipeline.core.fit.neighbors import faiss_installed, load_faiss, nearest_centroids, nearest_in_blocks
from cluster_pipeline.core.fit.options import KMeansEngine
from cluster_pipeline.core.progress import Progress

SAMPLE_MIN_ROWS = 5_000
SAMPLE_ROWS_PER_CLUSTER = 50
TRAIN_ROWS_PER_CLUSTER = 256  # faiss's max_points_per_centroid: its default training sample
MAX_FULL_PASSES = 3
PASS_BLOCK_ROWS = 65_536  # rows of an in-memory matrix per block handed to a pass
RELATIVE_TOLERANCE = 1e-4  # stop Lloyd when an iteration improves the objective by less than this fraction
LLOYD_CHUNK = 3  # faiss iterations per call, between convergence checks
SEED_ROWS_MIN = 2_000  # k-means++ draws its centres from max(2,000, 20·k) of the sample's rows
SEED_ROWS_PER_CLUSTER = 20
MINIBATCH_ABOVE = 2_000_000  # scikit-learn engine only
MINIBATCH_BATCH_SIZE = 4096

# KMeans parameters that MiniBatchKMeans shares, by name.
_MINIBATCH_SHARED = ("n_clusters", "init", "max_iter", "verbose", "random_state", "tol")


@dataclass
class KMeansFit:
    """A fitted k-means: ``labels`` (n,) int64, ``centers`` (k, d) float32, the inertia (sum of squared
    distances to the assigned centre), Lloyd iterations over all rows, how it ran and on what engine."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    method: str
    engine: str


def sample_size(n_samples: int, n_clusters: int) -> int:
    """Rows the starts run on: ``max(5,000, 50·k)``, at most all of them."""
    return min(n_samples, max(SAMPLE_MIN_ROWS, SAMPLE_ROWS_PER_CLUSTER * n_clusters))


class _Seeding:
    """Greedy k-means++ seedings (as scikit-learn's ``kmeans_plusplus``, ``2 + log(k)`` candidates per
    step) of one sample by float32 GEMMs, sharing the rows, their transpose and norms.

    scikit-learn computes the candidate distances with float32 data upcast to float64 in small
    blocks; here each step is one ``(trials, n_samples)`` float32 product against a transposed copy
    of the rows. Those products are thin and memory-bound, so they run on one BLAS thread: on a busy
    2-core machine two threads made them several times slower, on a quiet one they gain little
    (``seedings`` runs several side by side instead). ``run`` returns (k, d) float32 rows.
    """

    def __init__(self, X: np.ndarray) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.XT = np.ascontiguousarray(self.X.T)
        self.squared_norms = np.einsum("ij,ij->i", self.X, self.X)

    def run(self, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
        X, XT, squared_norms = self.X, self.XT, self.squared_norms
        n, trials = len(X), 2 + int(np.log(n_clusters))
        centres = np.empty((n_clusters, X.shape[1]), dtype=np.float32)
        first = int(rng.integers(n))
        centres[0] = X[first]
        closest = np.maximum(squared_norms - 2.0 * (X[first] @ XT) + squared_norms[first], 0.0)
        potential = float(closest.sum(dtype=np.float64))
        for c in range(1, n_clusters):
            cumulative = np.cumsum(closest, dtype=np.float64)
            candidates = np.searchsorted(cumulative, rng.random(trials) * potential)
            np.minimum(candidates, n - 1, out=candidates)
            distances = X[candidates] @ XT
            distances *= -2.0
            distances += squared_norms[candidates, None]
            distances += squared_norms[None, :]
            np.maximum(distances, 0.0, out=distances)
            np.minimum(distances, closest[None, :], out=distances)
            potentials = distances.sum(axis=1, dtype=np.float64)
            best = int(np.argmin(potentials))
            closest, potential = distances[best], float(potentials[best])
            centres[c] = X[candidates[best]]
        return centres


def seedings(sample: np.ndarray, n_clusters: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` k-means++ seedings drawn from ``max(2,000, 20·k)`` rows of ``sample``, side by side
    on the machine's cores.

    A seeding makes ``k`` passes over its rows, memory-bound (see ``_Seeding``): on 2,000
    rows they stay in cache, and the Lloyd iterations on the whole sample that follow place the
    centres (measured on 100k blobs, k=100: the same inertia as seeding from 5,000 rows, within
    run-to-run spread, in 60 % of the time). Each seeding is single-threaded, so two on two cores
    take the time of one; each gets its own seed from ``rng`` first, so the result does not depend
    on which thread ran which.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    size = min(len(sample), max(SEED_ROWS_MIN, SEED_ROWS_PER_CLUSTER * n_clusters))
    rows = sample if size >= len(sample) else sample[np.sort(rng.choice(len(sample), size, replace=False))]
    seeding = _Seeding(rows)
    generators = [np.random.default_rng(seed) for seed in rng.integers(2**63, size=count)]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(min(count, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda generator: seeding.run(n_clusters, generator), generators))


def _draw_sample(X: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    rows = X if size >= len(X) else X[np.sort(rng.choice(len(X), size, replace=False))]
    return np.ascontiguousarray(rows, dtype=np.float32)


def faiss_lloyd(
    X: np.ndarray, centres: np.ndarray, *, max_iter: int = 300, seed: int = 0
) -> tuple[np.ndarray, float, int]:
    """Lloyd iterations on every row of ``X`` from ``centres`` (faiss), until converged or ``max_iter``:
    the new (k, d) float32 centres, the objective of the last assignment and the iterations run."""
    faiss = load_faiss()
    X = np.ascontiguousarray(X, dtype=np.float32)
    k, d = centres.shape
    done, objective = 0, np.inf
    while done < max_iter:
        # A few iterations per call: each call first checks every value (about 0.6 of an
        # iteration's time), and an iteration's objective is that of the centres it started from.
        step = min(LLOYD_CHUNK, max_iter - done)
        model = faiss.Kmeans(
            d, k, niter=step, seed=seed + done, max_points_per_centroid=len(X), min_points_per_centroid=1
        )
        model.train(X, init_centroids=centres)
        centres = np.asarray(model.centroids, dtype=np.float32)
        history = [objective, *(float(value) for value in model.obj)]
        done += step
        objective = history[-1]
        if history[-2] - objective <= RELATIVE_TOLERANCE * objective:
            break
    return centres, objective, done


def _best_start(
    sample: np.ndarray, k: int, n_init: int, max_iter: int, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, int]:
    """Centres and Lloyd iterations of the best of ``n_init`` k-means++ + Lloyd starts on ``sample``."""
    starts = [
        faiss_lloyd(sample, seeds, max_iter=max_iter, seed=seed + 1000 * start)
        for start, seeds in enumerate(seedings(sample, k, max(n_init, 1), rng))
    ]
    centres, _, n_iter = min(starts, key=lambda found: found[1])  # the first of equals, as a strict <
    return centres, n_iter


def _n_init(parameters: dict[str, Any]) -> int:
    n_init = parameters.get("n_init", "auto")
    return 1 if n_init == "auto" else int(n_init)


def uses_sampled_init(parameters: dict[str, Any]) -> bool:
    """Whether the sampled k-means++ starts apply: the default ``init="k-means++"``."""
    init = parameters.get("init", "k-means++")
    return isinstance(init, str) and init == "k-means++"


def choose_engine(engine: KMeansEngine, parameters: dict[str, Any]) -> Literal["faiss", "sklearn"]:
    """faiss when installed and the parameters are ones it runs (k-means++ init), else scikit-learn."""
    if engine == "sklearn" or not uses_sampled_init(parameters):
        return "sklearn"
    return "faiss" if engine == "faiss" or faiss_installed() else "sklearn"


def training_size(n_samples: int, n_clusters: int) -> int:
    """Rows the best start is trained on before the passes over every row: ``256·k``, at least the
    starts' sample, at most all of them."""
    return min(n_samples, max(sample_size(n_samples, n_clusters), TRAIN_ROWS_PER_CLUSTER * n_clusters))


Blocks = Callable[[], Iterable[tuple[int, np.ndarray]]]
"""A source of every row, again at each call: ``(first row, (rows, d) float32 block)`` in row order."""


def matrix_blocks(X: np.ndarray) -> Blocks:
    """The rows of an in-memory matrix as ``Blocks`` (views)."""
    return lambda: ((start, X[start : start + PASS_BLOCK_ROWS]) for start in range(0, len(X), PASS_BLOCK_ROWS))


@dataclass
class PassResult:
    """One assignment pass: each row's nearest of ``centres``, the objective (sum of squared distances
    to them), and per centre its members' count and the sum of their rows (float64)."""

    centres: np.ndarray
    labels: np.ndarray
    objective: float
    counts: np.ndarray
    sums: np.ndarray

    @property
    def means(self) -> np.ndarray:
        """(k, d) float32 members' means; a centre without members keeps its place."""
        means = (self.sums / np.maximum(self.counts, 1)[:, None]).astype(np.float32)
        empty = self.counts == 0
        means[empty] = self.centres[empty]
        return means

    @property
    def inertia(self) -> float:
        """Sum of squared distances of every row to its members' mean: the objective less what moving
        each centre to its mean gains (``Σ‖x−c‖² = Σ‖x−m‖² + n‖m−c‖²`` within a cluster)."""
        shift = self.means.astype(np.float64) - self.centres
        return max(self.objective - float(self.counts @ np.einsum("ij,ij->i", shift, shift)), 0.0)


def assignment_pass(blocks: Blocks, centres: np.ndarray, n_samples: int, progress: Progress, stage: str) -> PassResult:
    """Every row of ``blocks`` assigned to its nearest of ``centres``, its members summed on the way."""
    from cluster_pipeline.core.quality.metrics import add_by_label

    labels = np.empty(n_samples, dtype=np.int64)
    sums = np.zeros(centres.shape, dtype=np.float64)
    objective = 0.0
    for offset, block in blocks():
        for start, nearest, squared in nearest_in_blocks(block, centres, offset):
            labels[start : start + len(nearest)] = nearest
            objective += float(squared.sum(dtype=np.float64))
            add_by_label(sums, nearest, block[start - offset : start - offset + len(nearest)])
        progress.update(stage, offset + len(block), n_samples)
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    return PassResult(centres, labels, objective, counts, sums)


def lloyd_passes(
    blocks: Blocks, centres: np.ndarray, n_samples: int, progress: Progress, max_passes: int = MAX_FULL_PASSES
) -> tuple[PassResult, int]:
    """Lloyd over every row from ``centres``: assignment passes until moving the centres to their
    members' means gains less than ``RELATIVE_TOLERANCE`` of the objective (at most ``max_passes``).
    The last pass (its ``means`` are the new centres, its ``inertia`` theirs) and the passes run."""
    done = 0
    while True:
        found = assignment_pass(blocks, centres, n_samples, progress, "fit")
        done += 1
        if found.objective - found.inertia <= RELATIVE_TOLERANCE * found.objective or done >= max_passes:
            return found, done
        centres = found.means


def train_centres(
    sample: Callable[[int], np.ndarray], n_samples: int, parameters: dict[str, Any], progress: Progress
) -> tuple[np.ndarray, int]:
    """(k, d) float32 centres trained as the module doc says, from seeded samples of the rows
    (``sample(size)``: that many rows, drawn by the generator the caller seeded), and the Lloyd
    iterations of the training."""
    k, n_init = int(parameters.get("n_clusters", 8)), _n_init(parameters)
    seed, max_iter = int(parameters.get("random_state") or 0), int(parameters.get("max_iter", 300))
    rng = np.random.default_rng(seed)
    size, train = sample_size(n_samples, k), training_size(n_samples, k)
    progress.update("fit", 0, n_samples, note=f"k-means++ ×{n_init} on {size:,} sampled rows (faiss)")
    centres, n_iter = _best_start(sample(size), k, n_init, max_iter, rng, seed)
    if train > size:
        progress.update("fit", 0, n_samples, note=f"Lloyd on {train:,} sampled rows (faiss)")
        centres, _, n_iter = faiss_lloyd(sample(train), centres, max_iter=max_iter, seed=seed)
    return centres, n_iter


def fit_kmeans(
    X: np.ndarray, parameters: dict[str, Any], progress: Progress | None = None, engine: KMeansEngine = "auto"
) -> KMeansFit:
    """Fit k-means with ``parameters`` (scikit-learn's names) on ``X`` ((n, d) float32), on the chosen
    engine; the same parameters and seed give the same labels. ``method`` says how it ran:
    ``faiss+sampled_init``, ``kmeans+sampled_init``, ``kmeans`` (a custom init) or ``minibatch_kmeans``.
    ``n_iter`` counts the passes over every row (the training's iterations when there were none)."""
    progress = progress or Progress.silent()
    if choose_engine(engine, parameters) == "sklearn":
        return _fit_sklearn(X, parameters, progress)
    n = len(X)
    draws = np.random.default_rng([int(parameters.get("random_state") or 0), 1])
    centres, n_iter = train_centres(lambda size: _draw_sample(X, size, draws), n, parameters, progress)
    if training_size(n, len(centres)) < n:
        found, n_iter = lloyd_passes(matrix_blocks(X), centres, n, progress)
        labels, centres, inertia = found.labels, found.means, found.inertia
    else:
        labels, squared = nearest_centroids(X, centres)
        inertia = float(squared.sum(dtype=np.float64))
    progress.update("fit", n, n, note=f"{n_iter} Lloyd iterations")
    return KMeansFit(labels, centres, inertia, n_iter, "faiss+sampled_init", "faiss")


def sampled_init(
    X: np.ndarray,
    n_clusters: int,
    *,
    n_init: int = 3,
    random_state: int | None = 0,
    size: int | None = None,
    engine: KMeansEngine = "auto",
) -> np.ndarray:
    """(k, d) float32 initial centres: the best of ``n_init`` k-means runs (k-means++ then Lloyd, by faiss
    or scikit-learn) on a seeded sample of ``size`` rows (default ``sample_size``)."""
    rng = np.random.default_rng(random_state)
    sample = _draw_sample(X, size or sample_size(len(X), n_clusters), rng)
    if choose_engine(engine, {}) == "faiss":
        return _best_start(sample, n_clusters, n_init, 300, rng, int(random_state or 0))[0]
    from sklearn.cluster import KMeans

    starts = [
        KMeans(n_clusters=n_clusters, init=seeds, n_init=1).fit(sample)
        for seeds in seedings(sample, n_clusters, max(n_init, 1), rng)
    ]
    return np.asarray(min(starts, key=lambda model: model.inertia_).cluster_centers_, dtype=np.float32)


def _fit_sklearn(X: np.ndarray, parameters: dict[str, Any], progress: Progress) -> KMeansFit:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = len(X)
    if n > MINIBATCH_ABOVE:
        shared = {name: parameters[name] for name in _MINIBATCH_SHARED if name in parameters}
        progress.update("fit", 0, n, note="MiniBatchKMeans")
        n_init = int(parameters.get("n_init", 3)) or 3
        model = MiniBatchKMeans(batch_size=MINIBATCH_BATCH_SIZE, n_init=n_init, **shared).fit(X)
        method = "minibatch_kmeans"
    elif not uses_sampled_init(parameters):
        model = KMeans(**parameters).fit(X)
        method = "kmeans"
    else:
        k = int(parameters.get("n_clusters", 8))
        progress.update("fit", 0, n, note=f"k-means++ ×{_n_init(parameters)} on {sample_size(n, k):,} sampled rows")
        centres = sampled_init(
            X, k, n_init=_n_init(parameters), random_state=parameters.get("random_state"), engine="sklearn"
        )
        progress.update("fit", 0, n, note="Lloyd iterations on all rows")
        # copy_x=False: X is our own prepared copy, so scikit-learn may centre it in place instead of
        # holding a second matrix (it adds the mean back; values move by float32 rounding only).
        model = KMeans(**{"copy_x": False, **parameters, "init": centres, "n_init": 1}).fit(X)
        method = "kmeans+sampled_init"
    progress.update("fit", n, n, note=f"{method}, {model.n_iter_} iterations")
    labels, centres = np.asarray(model.labels_, dtype=np.int64), np.asarray(model.cluster_centers_, dtype=np.float32)
    return KMeansFit(labels, centres, float(model.inertia_), int(model.n_iter_), method, "scikit-learn")
