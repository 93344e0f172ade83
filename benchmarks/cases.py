"""One measured case per child process: ``python -m benchmarks.cases CASE '{"n": ...}'``.

Each case prints one ``RESULT {json}`` line with its timings and memory. Memory is sampled from
``/proc/self/statm`` by a thread every 10 ms, so every stage gets its own peak RSS, and the matrix
size is reported beside it for the ratios.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "out" / "data"
AG_NEWS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ag_news_test_minilm.parquet"
PAGE = 4096


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


class RssMonitor:
    """Peak RSS per named stage, sampled in the background."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.peaks: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), rss_mb()))
            time.sleep(self.interval)

    def peak_between(self, start: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max([*inside, rss_mb()]) if end >= time.perf_counter() - self.interval else max(inside or [rss_mb()])

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ended = time.perf_counter()
        time.sleep(self.interval * 2)
        self.seconds[name] = round(ended - started, 4)
        self.peaks[name] = round(self.peak_between(started, ended + self.interval), 1)

    def stages_from_timings(self, started: float, timings: dict[str, float]) -> dict[str, float]:
        """Peak RSS of each stage of an execution, from its consecutive timings."""
        peaks, t = {}, started
        for name, seconds in timings.items():
            peaks[name] = round(self.peak_between(t, t + seconds + self.interval), 1)
            t += seconds
        return peaks

    def stop(self) -> None:
        self._stop.set()


def _lake(name: str, n: int, with_text: bool = True) -> Any:
    from benchmarks.data import write_blob_collection

    return write_blob_collection(DATA, name, n, with_text=with_text)


def _config(collection: str, **extra: Any) -> Any:
    from cluster_pipeline.core.config import ClusterConfig

    return ClusterConfig(namespace="bench", collection=collection, labeling={"use_llm": False}, **extra)


def _matrix(collection: str) -> np.ndarray:
    from cluster_pipeline.core.clustering import Preparation
    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.lake import Lake

    store = CollectionStore(Lake.local(DATA))
    X = store.load_embeddings(store.snapshot("bench", collection), "embedding")
    return Preparation(normalize=True).apply(X, copy=False)


def _run_id() -> str:
    import secrets

    return f"run_{secrets.token_hex(8)}"


def _warm_up(store: Any, snapshot: Any) -> None:
    """Read one small batch first, so Arrow's allocator and thread pools are not counted as load memory."""
    import pyarrow.parquet as pq

    source = store.storage.parquet_source(snapshot.parts[0].key)
    next(pq.ParquetFile(source).iter_batches(batch_size=16, columns=["embedding"]))


def case_load_bare(n: int, collection: str) -> dict[str, Any]:
    """``pyarrow.parquet.read_table`` of the embedding column plus its conversion to one matrix."""
    import pyarrow.parquet as pq

    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.lake import Lake

    store = CollectionStore(Lake.local(DATA))
    snapshot = store.snapshot("bench", collection)
    _warm_up(store, snapshot)
    monitor, before = RssMonitor(), rss_mb()
    with monitor.stage("load"):
        tables = [pq.read_table(store.storage.parquet_source(p.key), columns=["embedding"]) for p in snapshot.parts]
        chunks = [chunk for table in tables for chunk in table.column(0).chunks]
        X = np.concatenate([c.flatten().to_numpy().reshape(-1, 384) for c in chunks])
    return {
        "seconds": monitor.seconds["load"],
        "peak_mb": monitor.peaks["load"] - before,
        "matrix_mb": X.nbytes / 2**20,
    }


def case_load(n: int, collection: str) -> dict[str, Any]:
    """``CollectionStore.load_embeddings``, the pipeline's load."""
    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.lake import Lake

    store = CollectionStore(Lake.local(DATA))
    snapshot = store.snapshot("bench", collection)
    _warm_up(store, snapshot)
    monitor, before = RssMonitor(), rss_mb()
    with monitor.stage("load"):
        X = store.load_embeddings(snapshot, "embedding")
    assert X.flags.c_contiguous and X.dtype == np.float32
    return {
        "seconds": monitor.seconds["load"],
        "peak_mb": monitor.peaks["load"] - before,
        "matrix_mb": X.nbytes / 2**20,
    }


def case_execute(n: int, collection: str, **config: Any) -> dict[str, Any]:
    """A full execution through ``core.execution.execute``: load, fit, metrics, labels, write."""
    from cluster_pipeline.core.execution import execute
    from cluster_pipeline.core.lake import Lake

    cfg = _config(collection, **config)
    monitor, before = RssMonitor(), rss_mb()
    started = time.perf_counter()
    result = execute(Lake.local(DATA), cfg, _run_id())
    total = time.perf_counter() - started
    time.sleep(0.05)
    monitor.stop()
    timings = dict(result.timings or {})
    return {
        "seconds": round(total, 3),
        "timings": timings,
        "stage_peak_mb": monitor.stages_from_timings(started, timings),
        "peak_mb": round(max(rss for _, rss in monitor.samples), 1),
        "baseline_mb": round(before, 1),
        "matrix_mb": n * 384 * 4 / 2**20,
        "status": result.status,
        "error": result.error_message,
        "num_clusters": result.num_clusters,
        "metrics": result.metrics,
        "silhouette_sample_size": result.silhouette_sample_size,
    }


def case_kmeans_bare(n: int, collection: str, n_clusters: int = 100, sklearn_default: bool = False) -> dict[str, Any]:
    """The same k-means (``core.kmeans.fit_kmeans``) on an in-memory normalised matrix; optionally
    scikit-learn's default ``KMeans`` for the inertia bound."""
    from sklearn.cluster import KMeans

    from cluster_pipeline.core.config import ALGORITHM_DEFAULTS
    from cluster_pipeline.core.kmeans import fit_kmeans

    X = _matrix(collection)
    parameters = {**ALGORITHM_DEFAULTS["kmeans"], "n_clusters": n_clusters}
    started = time.perf_counter()
    fit = fit_kmeans(X, parameters)
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 3), "method": fit.method}
    out["inertia"] = fit.inertia
    if sklearn_default:
        started = time.perf_counter()
        reference = KMeans(n_clusters=n_clusters, random_state=0).fit(X)
        out["sklearn_seconds"] = round(time.perf_counter() - started, 3)
        out["sklearn_inertia"] = float(reference.inertia_)
    return out


def case_silhouette(n: int, collection: str, rows: int = 20_000) -> dict[str, Any]:
    """Exact silhouette: ours (chunked float32 GEMMs) against ``sklearn.metrics.silhouette_score``."""
    import pyarrow.parquet as pq
    from sklearn.metrics import silhouette_score

    from cluster_pipeline.core.collections import CollectionStore
    from cluster_pipeline.core.lake import Lake
    from cluster_pipeline.core.metrics import silhouette_fast

    X = np.ascontiguousarray(_matrix(collection)[:rows])
    store = CollectionStore(Lake.local(DATA))
    parts = store.snapshot("bench", collection).parts
    topics = np.concatenate(
        [pq.read_table(store.storage.parquet_source(p.key), columns=["topic"]).column(0).to_numpy() for p in parts]
    )[:rows]
    monitor = RssMonitor()
    before = rss_mb()
    with monitor.stage("ours"):
        ours = silhouette_fast(X, topics)
    with monitor.stage("sklearn"):
        reference = float(silhouette_score(X, topics))
    return {
        "ours_seconds": monitor.seconds["ours"],
        "sklearn_seconds": monitor.seconds["sklearn"],
        "ours": ours,
        "sklearn": reference,
        "ours_extra_mb": round(monitor.peaks["ours"] - before, 1),
    }


def case_ag_news(n: int, collection: str) -> dict[str, Any]:
    """AG News (real MiniLM embeddings): execute k-means k=4; sampled silhouette against exact."""
    import pyarrow.parquet as pq
    from sklearn.metrics import v_measure_score

    from benchmarks.data import read_ag_news
    from cluster_pipeline.core.execution import execute
    from cluster_pipeline.core.metrics import compute_metrics
    from cluster_pipeline.core.results import ResultStore

    lake = read_ag_news(AG_NEWS, DATA)
    cfg = _config("ag_news", parameters={"n_clusters": 4})
    started = time.perf_counter()
    result = execute(lake, cfg, _run_id())
    seconds = time.perf_counter() - started
    assignments = pq.read_table(
        lake.storage.path(ResultStore(lake).assignments_key("bench", cfg.cluster_id, result.run_id))
    ).column("cluster_index")
    category = pq.read_table(AG_NEWS, columns=["category"]).column(0).to_numpy(zero_copy_only=False)
    X = _matrix("ag_news")
    labels = assignments.to_numpy()
    exact = compute_metrics(X, labels, sample_size=len(X))
    errors = {}
    for size in (1000, 2000, 5000):
        sampled = [compute_metrics(X, labels, sample_size=size, random_state=seed) for seed in range(5)]
        errors[size] = max(abs(m.silhouette_score - exact.silhouette_score) for m in sampled)
    return {
        "seconds": round(seconds, 3),
        "timings": result.timings,
        "v_measure": round(float(v_measure_score(category, labels)), 4),
        "silhouette_exact": exact.silhouette_score,
        "sampled_silhouette_max_error": errors,
    }


def case_hdbscan(n: int, collection: str) -> dict[str, Any]:
    """HDBSCAN at ``n`` × 384: each installed backend bare on the same PCA-reduced data, then the pipeline."""
    from cluster_pipeline.core.clustering import fit_preparation
    from cluster_pipeline.core.config import ALGORITHM_DEFAULTS
    from cluster_pipeline.core.execution import execute
    from cluster_pipeline.core.hdbscan_backends import installed_backends, make_hdbscan, warm_numba_cache
    from cluster_pipeline.core.lake import Lake

    cfg = _config(collection, algorithm="hdbscan")
    X = _matrix(collection)
    space = fit_preparation(X, cfg).apply(X)
    del X
    parameters = dict(ALGORITHM_DEFAULTS["hdbscan"])
    out: dict[str, Any] = {"dimensions": int(space.shape[1]), "backends": {}}
    if "fast_hdbscan" in installed_backends():  # numba: compile, or load the cache
        out["fast_hdbscan_warmup_seconds"] = round(warm_numba_cache(), 2)
    for backend in installed_backends():
        started = time.perf_counter()
        labels = make_hdbscan(backend, parameters).fit_predict(space)
        out["backends"][backend] = {
            "seconds": round(time.perf_counter() - started, 3),
            "clusters": int(labels.max()) + 1,
            "noise": int((labels < 0).sum()),
        }
    started = time.perf_counter()
    result = execute(Lake.local(DATA), cfg, _run_id())
    out["pipeline_seconds"] = round(time.perf_counter() - started, 3)
    out["pipeline_timings"] = result.timings
    out["pipeline_clusters"] = result.num_clusters
    out["status"] = result.status
    return out


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_") and callable(fn)
}


def main() -> None:
    case, arguments = sys.argv[1], json.loads(sys.argv[2])
    if arguments.pop("prepare", None):
        _lake(arguments["collection"], arguments["n"], arguments.pop("with_text", True))
    result = CASES[case](**arguments)
    print("RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
