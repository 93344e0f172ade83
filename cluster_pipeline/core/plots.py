"""Pictures of an execution: a 2-D projection coloured by cluster, and the cluster sizes.

Drawn straight into a pixel array with numpy and Pillow rather than through matplotlib: a figure
cost ~2 s per execution whatever N (import, figure set-up, Agg rendering, PNG quantisation), more
than the whole k-means of 100k documents, for two charts that need only dots, bars and text. Here
both take tens of milliseconds. Large collections are drawn from a seeded, cluster-stratified
sample of at most ``MAX_PLOT_POINTS`` points: more points add ink, not information, and the PNG
stays small enough to show inline in the Dagster UI.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cluster_pipeline.core.auto_k import AutoK
from cluster_pipeline.core.metrics import stratified_sample

MAX_PLOT_POINTS = 20_000
MAX_NAMED_CLUSTERS = 40  # the largest clusters get their name on the projection; the sizes chart names all
PCA_ROWS = 5_000  # rows the projection's two axes are fitted on (every plotted row is projected)
WIDTH, HEIGHT = 800, 600
MARGIN, TITLE_HEIGHT = 16, 36
POINT_ALPHA = 0.6
NOISE_COLOUR = (176, 176, 176)
WHITE, BLACK, INK = (255, 255, 255), (0, 0, 0), (40, 40, 40)
# matplotlib's "tab20": 20 colours distinct enough to tell clusters apart
TAB20 = [
    (31, 119, 180), (174, 199, 232), (255, 127, 14), (255, 187, 120), (44, 160, 44),
    (152, 223, 138), (214, 39, 40), (255, 152, 150), (148, 103, 189), (197, 176, 213),
    (140, 86, 75), (196, 156, 148), (227, 119, 194), (247, 182, 210), (127, 127, 127),
    (199, 199, 199), (188, 189, 34), (219, 219, 141), (23, 190, 207), (158, 218, 229),
]  # fmt: skip


def colour(cluster: int) -> tuple[int, int, int]:
    return TAB20[cluster % len(TAB20)]


@cache
def _font(size: int) -> Any:
    """Pillow's bundled scalable font (no system fonts needed, same look everywhere)."""
    return ImageFont.load_default(size=size)


def _png(image: Image.Image) -> bytes:
    """PNG with a 256-colour palette (octree): a third of the RGB size, inlined in the Dagster UI."""
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="png", compress_level=6)
    return out.getvalue()


def project_2d(space: np.ndarray, method: str = "pca", random_state: int = 0) -> tuple[np.ndarray, str]:
    """Two coordinates per row and the method used: PCA (default), or UMAP (``core.reduction``).

    The PCA axes are the top two eigenvectors of the (d, d) covariance of at most ``PCA_ROWS`` rows,
    found by subspace iteration (a few tiny products): a picture needs no more precision than that,
    and it costs milliseconds where an SVD of the (n, d) matrix costs a second.
    """
    if method == "umap":
        from cluster_pipeline.core.reduction import umap_coordinates

        reduced = umap_coordinates(space, n_components=2, min_dist=0.1, random_state=random_state)
        return reduced.coordinates.astype(np.float64), "umap"
    X = np.asarray(space, dtype=np.float32)
    if X.shape[1] <= 2:
        return np.pad(X, ((0, 0), (0, 2 - X.shape[1]))).astype(np.float64), "pca"
    rng = np.random.default_rng(random_state)
    fit = X if len(X) <= PCA_ROWS else X[np.sort(rng.choice(len(X), PCA_ROWS, replace=False))]
    mean = fit.mean(axis=0, dtype=np.float64)
    centred = (fit - mean).astype(np.float32)
    covariance = (centred.T @ centred).astype(np.float64)
    basis = rng.standard_normal((X.shape[1], 4))
    for _ in range(30):
        basis, _ = np.linalg.qr(covariance @ basis)
    values, vectors = np.linalg.eigh(basis.T @ covariance @ basis)
    components = basis @ vectors[:, ::-1][:, :2]
    components *= np.sign(components[np.abs(components).argmax(axis=0), [0, 1]])  # a fixed orientation
    components = components.astype(np.float32)
    return X @ components - mean.astype(np.float32) @ components, "pca"


def _to_pixels(xy: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Coordinates scaled into ``box`` (left, top, right, bottom), 4 % padding, y pointing up."""
    left, top, right, bottom = box
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0) * 1.08
    unit = (xy - (low + high) / 2) / span + 0.5
    px = left + unit[:, 0] * (right - left)
    py = bottom - unit[:, 1] * (bottom - top)
    return np.stack([px, py], axis=1).round().astype(np.int64)


def _blend_points(canvas: np.ndarray, pixels: np.ndarray, colours: np.ndarray, radius: int = 1) -> None:
    """Squares of ``2·radius + 1`` pixels at ``pixels``, alpha-blended onto ``canvas`` in order."""
    height, width, _ = canvas.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            ys = np.clip(pixels[:, 1] + dy, 0, height - 1)
            xs = np.clip(pixels[:, 0] + dx, 0, width - 1)
            canvas[ys, xs] = canvas[ys, xs] * (1 - POINT_ALPHA) + colours * POINT_ALPHA


def _title(draw: ImageDraw.ImageDraw, text: str, width: int) -> None:
    font = _font(15)
    draw.text(((width - draw.textlength(text, font=font)) / 2, 10), text, fill=INK, font=font)


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
    sampled = np.asarray(labels)[rows]
    box = (MARGIN, TITLE_HEIGHT, WIDTH - MARGIN, HEIGHT - MARGIN)
    pixels = _to_pixels(xy, box)
    canvas = np.full((HEIGHT, WIDTH, 3), 255.0, dtype=np.float32)
    palette = np.array([*TAB20, NOISE_COLOUR], dtype=np.float32)
    noise = sampled < 0
    # noise underneath, then members in a seeded random order so no cluster always hides another
    order = np.random.default_rng(random_state).permutation(len(sampled))
    order = np.concatenate([order[noise[order]], order[~noise[order]]])
    colour_index = np.where(noise, len(TAB20), sampled % len(TAB20))
    _blend_points(canvas, pixels[order], palette[colour_index[order]])
    image = Image.fromarray(canvas.round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle(box, outline=(200, 200, 200))
    font = _font(12)
    members = sampled >= 0
    counts = np.bincount(sampled[members], minlength=len(cluster_labels))
    centres = (
        np.stack(
            [np.bincount(sampled[members], weights=pixels[members, axis], minlength=len(counts)) for axis in (0, 1)],
            axis=1,
        )
        / np.maximum(counts, 1)[:, None]
    )
    for cluster in range(min(len(cluster_labels), MAX_NAMED_CLUSTERS)):
        if not counts[cluster]:
            continue
        x, y = (int(v) for v in centres[cluster].round())
        for width, fill in ((5, BLACK), (3, colour(cluster))):
            draw.line((x - 5, y - 5, x + 5, y + 5), fill=fill, width=width)
            draw.line((x - 5, y + 5, x + 5, y - 5), fill=fill, width=width)
        text = f"cl_{cluster}: {cluster_labels[cluster]}"[:48]
        left, top, right, bottom = draw.textbbox((x + 9, y - 18), text, font=font)
        draw.rounded_rectangle((left - 3, top - 2, right + 3, bottom + 2), radius=3, fill=WHITE)
        draw.text((x + 9, y - 18), text, fill=BLACK, font=font)
    shown = f"{len(rows):,} of {len(labels):,} points" if len(rows) < len(labels) else f"{len(labels):,} points"
    _title(draw, f"Clusters in 2-D ({method.upper()} projection, {shown})", WIDTH)
    return _png(image)


def sizes_png(sizes: Sequence[int], cluster_labels: Sequence[str], num_noise: int = 0) -> bytes:
    """Horizontal bars of cluster sizes (largest on top), noise as its own grey bar."""
    names = [f"cl_{i}: {label}"[:40] for i, label in enumerate(cluster_labels)]
    values = [int(v) for v in sizes]
    colours = [colour(i) for i in range(len(values))]
    if num_noise:
        names.append("noise")
        values.append(int(num_noise))
        colours.append(NOISE_COLOUR)
    font, bar_pitch = _font(12), 22
    height = TITLE_HEIGHT + bar_pitch * max(len(values), 1) + 40
    image = Image.new("RGB", (WIDTH, height), WHITE)
    draw = ImageDraw.Draw(image)
    label_width = int(min(max((draw.textlength(n, font=font) for n in names), default=0), 320)) + 12
    left, right = MARGIN + label_width, WIDTH - MARGIN - 70
    largest = max(values, default=0) or 1
    for row, (name, value, fill) in enumerate(zip(names, values, colours, strict=True)):
        top = TITLE_HEIGHT + row * bar_pitch
        end = left + max(int(round((right - left) * value / largest)), 1)
        draw.rectangle((left, top + 3, end, top + bar_pitch - 3), fill=fill)
        draw.text((left - 8, top + bar_pitch / 2), name, fill=INK, font=font, anchor="rm")
        draw.text((end + 4, top + bar_pitch / 2), f"{value:,}", fill=INK, font=_font(11), anchor="lm")
    axis = TITLE_HEIGHT + bar_pitch * max(len(values), 1) + 4
    draw.line((left, TITLE_HEIGHT, left, axis), fill=(120, 120, 120))
    draw.text(((left + right) / 2, axis + 8), "documents", fill=INK, font=font, anchor="mt")
    _title(draw, "Cluster sizes", WIDTH)
    return _png(image)


def auto_k_png(auto_k: AutoK, width: int = 640, height: int = 360) -> bytes:
    """The automatic-k curve: the silhouette of each k tried, the chosen k marked."""
    ks = sorted(auto_k.scores)
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    font = _font(12)
    left, top, right, bottom = 70, TITLE_HEIGHT + 10, width - MARGIN - 10, height - 46
    draw.rectangle((left, top, right, bottom), outline=(200, 200, 200))
    if ks:
        values = np.array([auto_k.scores[k] for k in ks])
        low, high = float(values.min()), float(values.max())
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.01
        low, high = low - pad, high + pad

        def at(k: int, value: float) -> tuple[float, float]:
            x = left + (right - left) * ((k - ks[0]) / max(ks[-1] - ks[0], 1))
            return x, bottom - (bottom - top) * (value - low) / (high - low)

        points = [at(k, auto_k.scores[k]) for k in ks]
        if len(points) > 1:
            draw.line(points, fill=colour(0), width=2)
        for k, (x, y) in zip(ks, points, strict=True):
            chosen = k == auto_k.chosen
            r = 5 if chosen else 3
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour(6) if chosen else colour(0))
            draw.text((x, bottom + 6), str(k), fill=INK, font=font, anchor="mt")
        for value in (low + pad, high - pad):
            y = at(ks[0], value)[1]
            draw.text((left - 6, y), f"{value:.3f}", fill=INK, font=_font(11), anchor="rm")
        x, y = at(auto_k.chosen, auto_k.scores.get(auto_k.chosen, low))
        draw.text((x + 8, y - 8), f"k = {auto_k.chosen}", fill=BLACK, font=font, anchor="ls")
    draw.text(((left + right) / 2, height - 18), auto_k.parameter, fill=INK, font=font, anchor="mt")
    _title(draw, f"Silhouette by {auto_k.parameter} (k-means, {auto_k.sample_size:,} sampled documents)", width)
    return _png(image)
