"""HDBSCAN through the fastest backend installed: ``fast_hdbscan``, ``hdbscan`` or scikit-learn's.

All three implement the same algorithm (same clusters on the same reduced data, see PERF_NOTES);
they differ in speed and in which options they offer. Parameters keep the ``hdbscan`` package's
names; ``auto`` picks ``fast_hdbscan`` when it is installed, the data is large enough to repay its
numba compilation (~80 s once, then cached in ``NUMBA_CACHE_DIR``) and every parameter set has a
counterpart there; otherwise ``hdbscan``, otherwise scikit-learn's.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.fit.numba_cache import numba_cache_dir

HDBSCAN_BACKENDS = ("fast_hdbscan", "hdbscan", "sklearn")
# hdbscan's HDBSCAN has no parameter constraints of its own; these scikit-learn HDBSCAN parameters
# have the same names and meanings ("algorithm" and "metric" differ, so they are left to hdbscan).
SHARED_WITH_SKLEARN = ("min_cluster_size", "min_samples", "cluster_selection_epsilon", "alpha", "leaf_size",
                       "allow_single_cluster", "cluster_selection_method", "max_cluster_size")  # fmt: skip
FAST_HDBSCAN_MIN_POINTS = 20_000

# parameters (hdbscan's names) each backend understands; hdbscan itself understands them all
_SUPPORTED = {
    "fast_hdbscan": {*SHARED_WITH_SKLEARN, "cluster_selection_persistence", "metric"} - {"alpha", "leaf_size"},
    "sklearn": {*SHARED_WITH_SKLEARN, "metric"},
}


def hdbscan_constraints() -> dict[str, Any]:
    """scikit-learn's constraints of the parameters both packages share (see ``SHARED_WITH_SKLEARN``)."""
    from sklearn.cluster import HDBSCAN

    return {name: HDBSCAN._parameter_constraints[name] for name in SHARED_WITH_SKLEARN}


def installed_backends() -> list[str]:
    """Backends importable here, fastest first (each is named after its module)."""
    return [name for name in HDBSCAN_BACKENDS if importlib.util.find_spec(name) is not None]


def _unsupported(backend: str, parameters: dict[str, Any]) -> list[str]:
    return sorted(set(parameters) - _SUPPORTED.get(backend, set(parameters)))


def choose_backend(requested: str, parameters: dict[str, Any], n_samples: int) -> str:
    """The backend to run: ``requested`` itself, or for ``auto`` the fastest that fits (see module doc)."""
    if requested != "auto":
        return requested
    available = installed_backends()
    euclidean = parameters.get("metric", "euclidean") == "euclidean"
    fast = n_samples >= FAST_HDBSCAN_MIN_POINTS and euclidean and not _unsupported("fast_hdbscan", parameters)
    if fast and "fast_hdbscan" in available:
        return "fast_hdbscan"
    return "hdbscan" if "hdbscan" in available else "sklearn"


def make_hdbscan(backend: str, parameters: dict[str, Any]) -> Any:
    """An unfitted HDBSCAN estimator of ``backend`` with ``parameters`` (hdbscan's names)."""
    unsupported = _unsupported(backend, parameters)
    if unsupported:
        raise ConfigurationError(
            f"HDBSCAN backend {backend!r} has no parameter(s) {', '.join(unsupported)}; "
            "use hdbscan_backend 'hdbscan' or drop them."
        )
    if backend == "hdbscan":
        import hdbscan

        # two core-distance workers were slower than one on 2 cores and kept child processes alive
        return hdbscan.HDBSCAN(**{"core_dist_n_jobs": 1, **parameters})
    # hdbscan's max_cluster_size 0 means "no limit"; the others refuse it
    options = {name: value for name, value in parameters.items() if name != "max_cluster_size" or value}
    if backend == "sklearn":
        from sklearn.cluster import HDBSCAN

        return HDBSCAN(**options)
    numba_cache_dir()
    import fast_hdbscan

    return fast_hdbscan.HDBSCAN(**options)
