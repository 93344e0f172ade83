"""Pictures of an execution: a 2-D projection coloured by cluster, and the cluster sizes.

Headless (matplotlib's Agg). Large collections are drawn from a seeded, cluster-stratified sample
of at most ``MAX_PLOT_POINTS`` points: more points add ink, not information, and keep the PNG small
enough to show inline in the Dagster UI.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from cluster_pipeline.core.metrics import stratified_sample  # noqa: E402

MAX_PLOT_POINTS = 20_000
NOISE_COLOUR = "#b0b0b0"


def _png(figure: plt.Figure) -> bytes:
    """Render, then quantize to a 256-colour palette: about a third of the size (it is inlined in
    the Dagster UI's metadata), with no visible change."""
    from PIL import Image

    rendered = io.BytesIO()
    figure.savefig(rendered, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    image = Image.open(rendered).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def project_2d(space: np.ndarray, method: str = "pca", random_state: int = 0) -> tuple[np.ndarray, str]:
    """Two coordinates per row and the method used: PCA (default), or UMAP when chosen and installed."""
    if method == "umap":
        try:
            import umap  # type: ignore[import-not-found]

            return np.asarray(umap.UMAP(n_components=2, random_state=random_state).fit_transform(space)), "umap"
        except ImportError:
            pass
    from sklearn.decomposition import PCA

    if space.shape[1] <= 2:
        return np.pad(space, ((0, 0), (0, 2 - space.shape[1]))), "pca"
    return PCA(n_components=2, random_state=random_state).fit_transform(space), "pca"


def projection_png(
    space: np.ndarray,
    labels: np.ndarray,
    cluster_labels: Sequence[str],
    *,
    method: str = "pca",
    max_points: int = MAX_PLOT_POINTS,
    random_state: int = 0,
) -> bytes:
    """Scatter of the (sampled) points in 2-D, one colour per cluster, noise grey, labels at centres."""
    rows = np.arange(len(labels)) if len(labels) <= max_points else stratified_sample(labels, max_points, random_state)
    xy, method = project_2d(space[rows], method, random_state)
    sampled = labels[rows]
    figure, axes = plt.subplots(figsize=(10, 7.5))
    colours = plt.get_cmap("tab20")
    noise = sampled < 0
    if noise.any():
        axes.scatter(xy[noise, 0], xy[noise, 1], s=4, c=NOISE_COLOUR, alpha=0.5, label="noise", linewidths=0)
    for cluster in range(len(cluster_labels)):
        members = sampled == cluster
        if not members.any():
            continue
        colour = colours(cluster % 20)
        axes.scatter(xy[members, 0], xy[members, 1], s=5, color=colour, alpha=0.6, linewidths=0)
        centre = xy[members].mean(axis=0)
        axes.scatter(centre[0], centre[1], s=120, color=colour, edgecolors="black", marker="X", zorder=3)
        axes.annotate(
            f"cl_{cluster}: {cluster_labels[cluster]}"[:48],
            centre,
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.75, "lw": 0},
        )
    shown = f"{len(rows):,} of {len(labels):,} points" if len(rows) < len(labels) else f"{len(labels):,} points"
    axes.set_title(f"Clusters in 2-D ({method.upper()} projection, {shown})")
    axes.set_xticks([])
    axes.set_yticks([])
    return _png(figure)


def sizes_png(sizes: Sequence[int], cluster_labels: Sequence[str], num_noise: int = 0) -> bytes:
    """Horizontal bars of cluster sizes (largest on top), noise as its own grey bar."""
    names = [f"cl_{i}: {label}"[:40] for i, label in enumerate(cluster_labels)]
    values = list(sizes)
    colours: list[Any] = [plt.get_cmap("tab20")(i % 20) for i in range(len(values))]
    if num_noise:
        names.append("noise")
        values.append(num_noise)
        colours.append(NOISE_COLOUR)
    figure, axes = plt.subplots(figsize=(8, max(2.0, 0.35 * len(values) + 1)))
    positions = np.arange(len(values))[::-1]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, names, fontsize=9)
    for position, value in zip(positions, values, strict=True):
        axes.annotate(
            f"{value:,}", (value, position), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    axes.set_xlabel("documents")
    axes.set_title("Cluster sizes")
    return _png(figure)
