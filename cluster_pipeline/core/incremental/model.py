"""Assigning new documents to an execution's clusters without refitting (BERTopic's ``transform``;
the README's "Assign without refitting" says how each algorithm assigns, and what is novel).

Every completed execution stores ``<run_id>.model.npz`` beside its result: the preprocessing, the
centroids in the embedding space, each cluster's novelty radius and, for a Gaussian mixture fitted
in that space, the mixture. Plain arrays, no pickle: reading a model runs no code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.errors import ExecutionError
from cluster_pipeline.core.fit.clustering import FittedClustering, Preparation
from cluster_pipeline.core.fit.neighbors import nearest_centroids
from cluster_pipeline.core.store.results import ASSIGNMENTS_SCHEMA, assignment_columns

NOVELTY_PERCENTILE = 95.0
MODEL_VERSION = 1
GMM_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")

# an execution's assignments with ``novelty`` (farther than the novelty radius) for ``in_sample``;
# ``membership_strength`` is the mixture's posterior, null for nearest-centroid
ASSIGNMENT_SCHEMA = ASSIGNMENTS_SCHEMA.remove(ASSIGNMENTS_SCHEMA.get_field_index("in_sample")).append(
    pa.field("novelty", pa.bool_(), nullable=False)
)


class ModelMissingError(ExecutionError):
    """The execution has no stored model (it predates assignment, failed, or found no cluster)."""


@dataclass(frozen=True)
class AssignmentModel:
    """What an execution knows about its clusters that a new document needs (see the module doc)."""

    run_id: str
    preparation: Preparation
    centroids: np.ndarray  # (K, d) float32, the embedding space
    novelty_radius: np.ndarray  # (K,) float32
    method: str  # "nearest_centroid" or "gaussian_mixture"
    gmm: dict[str, np.ndarray] | None = None  # GMM_ARRAYS, plus "component_cluster" (n_components,) int
    covariance_type: str | None = None

    @property
    def num_clusters(self) -> int:
        return int(len(self.centroids))

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {  # Any: numpy types savez_compressed's **kwds as its allow_pickle
            "version": np.array(MODEL_VERSION),
            "run_id": np.array(self.run_id),
            "method": np.array(self.method),
            "normalize": np.array(self.preparation.normalize),
            "centroids": self.centroids,
            "novelty_radius": self.novelty_radius,
        }
        if self.preparation.pca_components is not None and self.preparation.pca_mean is not None:
            arrays["pca_mean"] = self.preparation.pca_mean
            arrays["pca_components"] = self.preparation.pca_components
        if self.gmm is not None:
            arrays.update({f"gmm_{name}": value for name, value in self.gmm.items()})
            arrays["covariance_type"] = np.array(self.covariance_type)
        out = io.BytesIO()
        np.savez_compressed(out, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AssignmentModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        preparation = Preparation(
            normalize=bool(arrays["normalize"]),
            pca_mean=arrays.get("pca_mean"),
            pca_components=arrays.get("pca_components"),
        )
        gmm = {name[4:]: value for name, value in arrays.items() if name.startswith("gmm_")} or None
        return cls(
            run_id=str(arrays["run_id"]),
            preparation=preparation,
            centroids=arrays["centroids"].astype(np.float32, copy=False),
            novelty_radius=arrays["novelty_radius"].astype(np.float32, copy=False),
            method=str(arrays["method"]),
            gmm=gmm,
            covariance_type=str(arrays["covariance_type"]) if "covariance_type" in arrays else None,
        )


def novelty_radius(fitted: FittedClustering) -> np.ndarray:
    """Per cluster, the 95th percentile of its members' distances to the centroid, leaving out noise
    reassigned to it (``reassign_noise``): they would widen the radius with the outliers it should flag."""
    found = fitted.labels >= 0
    if fitted.reassigned is not None:
        found &= ~fitted.reassigned
    radius = np.zeros(fitted.num_clusters, dtype=np.float32)
    labels, distances = fitted.labels[found], fitted.distances[found]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(fitted.num_clusters + 1))
    for cluster in range(fitted.num_clusters):
        members = distances[order[bounds[cluster] : bounds[cluster + 1]]]
        if len(members):
            radius[cluster] = np.percentile(members, NOVELTY_PERCENTILE)
    return radius


def model_from_fit(run_id: str, fitted: FittedClustering) -> AssignmentModel:
    """The assignment model of a fit; a mixture fitted on the embedding space keeps its own predict."""
    state = fitted.extras.get("gaussian_mixture")
    gmm = None
    if state is not None and fitted.reduction.get("method") != "umap":
        gmm = {name: np.asarray(state[name]) for name in (*GMM_ARRAYS, "component_cluster")}
    return AssignmentModel(
        run_id=run_id,
        preparation=fitted.preparation,
        centroids=np.ascontiguousarray(fitted.centroids, dtype=np.float32),
        novelty_radius=novelty_radius(fitted),
        method="nearest_centroid" if gmm is None else "gaussian_mixture",
        gmm=gmm,
        covariance_type=str(state["covariance_type"]) if gmm is not None and state is not None else None,
    )


@dataclass(frozen=True)
class Assigned:
    """Per new document: cluster index (-1 when there is none), distance, membership, novelty."""

    labels: np.ndarray
    distances: np.ndarray
    membership: np.ndarray | None
    novelty: np.ndarray

    @property
    def num_novel(self) -> int:
        return int(self.novelty.sum())


def assign(model: AssignmentModel, X: np.ndarray) -> Assigned:
    """Place the rows of ``X`` ((n, D) float32 raw embeddings) into the model's clusters."""
    n = len(X)
    if model.num_clusters == 0 or n == 0:
        empty = np.full(n, np.nan, dtype=np.float32)
        return Assigned(np.full(n, -1, dtype=np.int64), empty, None, np.full(n, n > 0 and model.num_clusters == 0))
    space = model.preparation.apply(X)
    labels, squared = nearest_centroids(space, model.centroids)
    membership = None
    if model.gmm is not None:
        predicted, membership = _gmm_predict(model, space)
        mapped = model.gmm["component_cluster"][predicted]
        labels = np.where(mapped >= 0, mapped, labels)  # a component that kept no document: nearest centroid
        diff = space - model.centroids[labels]
        squared = np.einsum("ij,ij->i", diff, diff)
    distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
    return Assigned(labels.astype(np.int64), distances, membership, distances > model.novelty_radius[labels])


def _gmm_predict(model: AssignmentModel, space: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fitted mixture's ``predict_proba`` on ``space``, through scikit-learn's own code."""
    from sklearn.mixture import GaussianMixture

    assert model.gmm is not None
    mixture = GaussianMixture(n_components=len(model.gmm["weights"]), covariance_type=model.covariance_type or "diag")
    for name in GMM_ARRAYS:
        setattr(mixture, f"{name}_", model.gmm[name])
    mixture.n_features_in_ = space.shape[1]
    posterior = mixture.predict_proba(space.astype(np.float64))
    return posterior.argmax(axis=1), posterior.max(axis=1).astype(np.float32)


def assignment_table(document_ids: pa.Array | pa.ChunkedArray, assigned: Assigned) -> pa.Table:
    """The assignments part of the new documents (``ASSIGNMENT_SCHEMA``)."""
    labels = assigned.labels
    k = int(labels.max()) + 1 if len(labels) else 0
    columns = assignment_columns(document_ids, labels, k, assigned.distances, assigned.membership)
    return pa.table(
        {**columns, "is_noise": pa.array(labels < 0), "novelty": pa.array(assigned.novelty.astype(bool))},
        schema=ASSIGNMENT_SCHEMA,
    )
