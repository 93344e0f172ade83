"""Seeded synthetic collections: Gaussian blobs in D=384, float32, written through the real ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake

DIMENSIONS = 384
TRUE_CLUSTERS = 100
CLUSTER_STD = 1.5
PART_ROWS = 500_000
TOPIC_WORDS = 3


def blob_part(start: int, rows: int, *, seed: int = 0, with_text: bool = True) -> pa.Table:
    """Rows ``start … start + rows`` of the seeded blob collection (the same rows whatever the parts)."""
    centers = np.random.default_rng(seed).standard_normal((TRUE_CLUSTERS, DIMENSIONS), dtype=np.float32)
    rng = np.random.default_rng([seed, start])
    labels = rng.integers(0, TRUE_CLUSTERS, rows)
    X = rng.standard_normal((rows, DIMENSIONS), dtype=np.float32)
    X *= CLUSTER_STD
    X += centers[labels]
    columns: dict[str, object] = {
        "document_id": pa.array(np.char.add("d", np.arange(start, start + rows).astype(str))),
        "topic": pa.array(labels.astype(np.int32)),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), DIMENSIONS),
    }
    if with_text:
        words = np.char.add("w", labels.astype(str))
        text = np.char.add(np.char.add(np.char.add(words, "a "), np.char.add(words, "b ")), "common words")
        columns["text"] = pa.array(text)
    return pa.table(columns)


def write_blob_collection(
    root: Path, name: str, n: int, *, seed: int = 0, with_text: bool = True, namespace: str = "bench"
) -> Lake:
    """Ingest ``n`` blob documents as collection ``name`` (parts of ``PART_ROWS``); reuses a complete one."""
    lake = Lake.local(root)
    store = CollectionStore(lake)
    if name in store.list_collections(namespace):
        snapshot = store.snapshot(namespace, name)
        if snapshot.num_documents != n:
            raise RuntimeError(f"{root}/{namespace}/{name} holds a different collection; remove it first.")
        if all(part.vectors_key for part in snapshot.parts):
            return lake
        # written before parts kept their vectors in Arrow files: the load cases would time Parquet
        shutil.rmtree(lake.storage.path(lake.collection_prefix(namespace, name)))
    for start in range(0, n, PART_ROWS):
        store.ingest(namespace, name, blob_part(start, min(PART_ROWS, n - start), seed=seed, with_text=with_text))
    return lake


def read_ag_news(path: Path, root: Path, name: str = "ag_news", namespace: str = "bench") -> Lake:
    """Ingest the AG News MiniLM embeddings (document_id, title, text, category, embedding)."""
    import pyarrow.parquet as pq

    lake = Lake.local(root)
    store = CollectionStore(lake)
    if name not in store.list_collections(namespace):
        store.ingest(namespace, name, pq.read_table(path))
    return lake
