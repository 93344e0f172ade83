"""Pictures of an execution: a 2-D projection coloured by cluster, and the cluster sizes.

Drawn straight into a pixel array with numpy and Pillow rather than through matplotlib: a figure
cost ~2 s per execution whatever N (import, figure set-up, Agg rendering, PNG quantisation), more
than the whole k-means of 100k documents, for two charts that need only dots, bars and text. Here
both take tens of milliseconds. Large collections are drawn from a seeded, cluster-stratified
sample of at most ``MAX_PLOT_POINTS`` points: more points add ink, not information, and the PNG
stays small enough to show inline in the Dagster UI.
"""

from __future__ import annotations

import bisect
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cluster_pipeline.core.fit.auto_k import AutoK
from cluster_pipeline.core.quality.metrics import stratified_sample
from cluster_pipeline.core.render.glyphs import GlyphDraw

MAX_PLOT_POINTS = 10_000
MAX_MAP_POINTS = 100_000  # points of the report's interactive map (WebGL draws them fluidly)
MAX_NAMED_CLUSTERS = 40  # the largest clusters get their name on the projection; the legend and sizes chart name all
PCA_ROWS = 5_000  # rows the projection's two axes are fitted on (every plotted row is projected)
WIDTH, HEIGHT = 1200, 800
LEGEND_WIDTH = 360
MARGIN, TITLE_HEIGHT = 16, 40
POINT_ALPHA = 0.7
NOISE_COLOUR = (176, 176, 176)
WHITE, BLACK, INK, FRAME = (255, 255, 255), (0, 0, 0), (40, 40, 40), (200, 200, 200)
# Ten hues no two of which are alike (CIEDE2000 ≥ 21 between any two, ≥ 20 from the noise grey; a
# test holds it): Okabe & Ito's colour-blind-safe set, most distinct first, then a purple, an olive
# and a crimson chosen to stay as far from those and from grey and white. Beyond ten clusters the
# hues repeat with another marker (disc, plus, cross, square), in the picture and in the map alike.
PALETTE = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (213, 94, 0), (204, 121, 167),
    (86, 180, 233), (240, 228, 66), (112, 0, 160), (80, 80, 0), (144, 0, 32),
]  # fmt: skip
MARKERS = ("disc", "plus", "cross", "square")
_MARKER_MASKS = {
    "disc": ["01110", "11111", "11111", "11111", "01110"],
    "plus": ["00100", "00100", "11111", "00100", "00100"],
    "cross": ["10001", "01010", "00100", "01010", "10001"],
    "square": ["11111", "10001", "10001", "10001", "11111"],
}


def colour(cluster: int) -> tuple[int, int, int]:
    """The colour of cluster ``cluster`` (noise, -1, is grey)."""
    return NOISE_COLOUR if cluster < 0 else PALETTE[cluster % len(PALETTE)]


def marker(cluster: int) -> str:
    """The marker of cluster ``cluster``: a disc for the first ten, then plus, cross, square, …"""
    return MARKERS[0] if cluster < 0 else MARKERS[(cluster // len(PALETTE)) % len(MARKERS)]


def hex_colour(cluster: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour(cluster))


@cache
def _font(size: int) -> Any:
    """Pillow's bundled scalable font (no system fonts needed, same look everywhere)."""
    return ImageFont.load_default(size=size)


def _png(image: Image.Image) -> bytes:
    """PNG with a 256-colour palette (octree): a third of the RGB size, inlined in the Dagster UI."""
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="png", compress_level=6)
    return out.getvalue()


def share(count: int, total: int) -> str:
    """``count`` as a percentage of ``total``, one decimal: "12.5 %"."""
    return f"{100 * count / total:.1f} %" if total else "-"


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels (the longest prefix that fits, by bisection)."""
    if draw.textlength(text, font=font) <= width:
        return text
    kept = bisect.bisect_left(
        range(1, len(text) + 1), True, key=lambda n: draw.textlength(text[:n] + "…", font=font) > width
    )
    return text[:kept].rstrip() + "…"


def project_2d(space: np.ndarray, method: str = "pca", random_state: int = 0) -> tuple[np.ndarray, str]:
    """Two coordinates per row and the method used: PCA (default), or UMAP (``core.reduction``).

    The PCA axes are the top two eigenvectors of the (d, d) covariance of at most ``PCA_ROWS`` rows,
    found by subspace iteration (a few tiny products): a picture needs no more precision than that,
    and it costs milliseconds where an SVD of the (n, d) matrix costs a second.
    """
    if method == "umap":
        from cluster_pipeline.core.fit.options import ReductionOptions
        from cluster_pipeline.core.fit.reduction import umap_coordinates

        reduced = umap_coordinates(space, ReductionOptions(n_components=2, min_dist=0.1, random_state=random_state))
        return reduced.coordinates.astype(np.float64), "umap"
    X = np.asarray(space, dtype=np.float32)
    if X.shape[1] <= 2:
        return np.pad(X, ((0, 0), (0, 2 - X.shape[1]))).astype(np.float64), "pca"
    rng = np.random.default_rng(random_state)
    fit = X if len(X) <= PCA_ROWS else X[np.sort(rng.choice(len(X), PCA_ROWS, replace=False))]
    mean = fit.mean(axis=0, dtype=np.float64)
    centred = fit - mean.astype(np.float32)  # in float32: a float64 copy of the rows costs 10× more
    covariance = (centred.T @ centred).astype(np.float64)
    basis = rng.standard_normal((X.shape[1], 4))
    for _ in range(30):
        basis, _ = np.linalg.qr(covariance @ basis)
    values, vectors = np.linalg.eigh(basis.T @ covariance @ basis)
    components = basis @ vectors[:, ::-1][:, :2]
    components *= np.sign(components[np.abs(components).argmax(axis=0), [0, 1]])  # a fixed orientation
    components = components.astype(np.float32)
    return X @ components - mean.astype(np.float32) @ components, "pca"


@dataclass(frozen=True)
class Projection:
    """The points a picture draws: which rows (of the labels given), where in 2-D, and how found."""

    rows: np.ndarray  # indices into the clustering's rows, sorted
    xy: np.ndarray  # (len(rows), 2) float
    labels: np.ndarray  # cluster of each row, -1 for noise
    total: int  # rows the sample was drawn from
    method: str  # "pca" or "umap"

    def sample(self, max_points: int, random_state: int = 0) -> Projection:
        """At most ``max_points`` of these points, stratified by cluster (the interactive map's)."""
        if len(self.rows) <= max_points:
            return self
        keep = stratified_sample(self.labels, max_points, random_state)
        return Projection(self.rows[keep], self.xy[keep], self.labels[keep], self.total, self.method)


def plotted_rows(labels: np.ndarray, max_points: int = MAX_PLOT_POINTS, random_state: int = 0) -> np.ndarray:
    """The rows a picture draws: all, or beyond ``max_points`` a seeded sample stratified by cluster."""
    return np.arange(len(labels)) if len(labels) <= max_points else stratified_sample(labels, max_points, random_state)


def project(
    space: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = "pca",
    max_points: int = MAX_PLOT_POINTS,
    random_state: int = 0,
) -> Projection:
    """2-D coordinates of at most ``max_points`` rows (a seeded sample stratified by cluster beyond that)."""
    labels = np.asarray(labels)
    rows = plotted_rows(labels, max_points, random_state)
    xy, used = project_2d(space if len(rows) == len(space) else space[rows], method, random_state)
    return Projection(rows, np.asarray(xy, dtype=np.float64), labels[rows], len(labels), used)


def _to_pixels(xy: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Coordinates scaled into ``box`` (left, top, right, bottom), 4 % padding, y pointing up."""
    left, top, right, bottom = box
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0) * 1.08
    unit = (xy - (low + high) / 2) / span + 0.5
    px = left + unit[:, 0] * (right - left)
    py = bottom - unit[:, 1] * (bottom - top)
    return np.stack([px, py], axis=1).round().astype(np.int64)


def _blend_points(canvas: np.ndarray, pixels: np.ndarray, colours: np.ndarray, shape: str) -> None:
    """The 5×5 marker ``shape`` at each of ``pixels``, alpha-blended onto ``canvas`` in order."""
    height, width, _ = canvas.shape
    for dy, row in enumerate(_MARKER_MASKS[shape], start=-2):
        for dx, ink in enumerate(row, start=-2):
            if ink == "1":
                ys = np.clip(pixels[:, 1] + dy, 0, height - 1)
                xs = np.clip(pixels[:, 0] + dx, 0, width - 1)
                canvas[ys, xs] = canvas[ys, xs] * (1 - POINT_ALPHA) + colours * POINT_ALPHA


def _draw_marker(
    draw: ImageDraw.ImageDraw, x: float, y: float, cluster: int, fill: tuple[int, int, int] | None = None, size: int = 6
) -> None:
    """One marker, the shape of the cluster's points drawn larger (in ``fill``, default its colour)."""
    fill, shape, r = fill or colour(cluster), marker(cluster), size
    if shape == "disc":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), outline=fill, width=max(r // 2, 2))
    elif shape == "plus":
        draw.line((x - r - 1, y, x + r + 1, y), fill=fill, width=max(r // 2, 2))
        draw.line((x, y - r - 1, x, y + r + 1), fill=fill, width=max(r // 2, 2))
    else:
        draw.line((x - r, y - r, x + r, y + r), fill=fill, width=max(r // 2, 2))
        draw.line((x - r, y + r, x + r, y - r), fill=fill, width=max(r // 2, 2))


def _title(draw: ImageDraw.ImageDraw, text: str, width: int) -> None:
    font = _font(16)
    draw.text(((width - draw.textlength(text, font=font)) / 2, 12), text, fill=INK, font=font)


Box = tuple[int, int, int, int]
LABEL_DIRECTIONS = ((1, 0), (-1, 0), (0, -1), (0, 1), (1, -1), (-1, -1), (1, 1), (-1, 1))


def place_labels(
    anchors: Sequence[tuple[int, int]], sizes: Sequence[tuple[int, int]], bounds: Box, avoid: Sequence[Box] = ()
) -> list[Box | None]:
    """A box per label near its anchor, overlapping no other label (nor ``avoid``) and inside ``bounds``.

    Greedy in the order given (callers put the largest clusters first): each label takes the first
    of 16 positions around its anchor — right, left, above, below, the diagonals, then twice as far —
    that is free; a label with no free position gets None (the legend still names its cluster).
    """
    left, top, right, bottom = bounds
    placed: list[Box] = list(avoid)
    boxes: list[Box | None] = []
    for (x, y), (w, h) in zip(anchors, sizes, strict=True):
        candidates = []
        for distance, (ox, oy) in itertools.product((9, 24), LABEL_DIRECTIONS):
            bx = x + distance if ox > 0 else x - distance - w if ox < 0 else x - w // 2
            by = y + distance if oy > 0 else y - distance - h if oy < 0 else y - h // 2
            if left <= bx and top <= by and bx + w <= right and by + h <= bottom:
                candidates.append((bx, by, bx + w, by + h))
        choice = next((box for box in candidates if not any(_overlap(box, other) for other in placed)), None)
        if choice is not None:
            placed.append(choice)
        boxes.append(choice)
    return boxes


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def projection_png(
    projection: Projection, cluster_labels: Sequence[str], sizes: Sequence[int], num_noise: int = 0
) -> bytes:
    """Scatter of the projected points, one colour (and marker) per cluster, noise grey; each cluster
    named at its centre where there is room, and all of them in the legend with their share."""
    plot = (MARGIN, TITLE_HEIGHT, WIDTH - LEGEND_WIDTH - MARGIN, HEIGHT - MARGIN)
    pixels = _to_pixels(projection.xy, (plot[0] + 6, plot[1] + 6, plot[2] - 6, plot[3] - 6))
    labels = projection.labels
    canvas = np.full((HEIGHT, WIDTH, 3), 255.0, dtype=np.float32)
    noise = labels < 0
    if noise.any():
        _blend_points(canvas, pixels[noise], np.array(NOISE_COLOUR, dtype=np.float32), "disc")
    # members in a seeded random order, so no cluster always hides another
    order = np.random.default_rng(0).permutation(np.flatnonzero(~noise))
    palette = np.array(PALETTE, dtype=np.float32)
    shapes = (labels[order] // len(PALETTE)) % len(MARKERS)  # as ``marker``
    for index, shape in enumerate(MARKERS):
        chosen = order[shapes == index]
        if len(chosen):
            _blend_points(canvas, pixels[chosen], palette[labels[chosen] % len(PALETTE)], shape)
    image = Image.fromarray(canvas.round().astype(np.uint8), "RGB")
    draw = GlyphDraw(image)
    draw.rectangle(plot, outline=FRAME)
    _centre_labels(draw, pixels, labels, cluster_labels, plot)
    _legend(draw, cluster_labels, sizes, num_noise, (WIDTH - LEGEND_WIDTH, TITLE_HEIGHT, WIDTH - MARGIN, HEIGHT))
    shown = projection.total
    points = f"{len(labels):,} of {shown:,} points" if len(labels) < shown else f"{shown:,} points"
    _title(draw, f"Clusters in 2-D ({projection.method.upper()} projection, {points})", WIDTH - LEGEND_WIDTH)
    return _png(image)


def _centre_labels(
    draw: ImageDraw.ImageDraw, pixels: np.ndarray, labels: np.ndarray, names: Sequence[str], plot: Box
) -> None:
    """A ringed dot at each cluster's centre (mean position of its drawn points), its name beside it."""
    font = _font(13)
    members = labels >= 0
    counts = np.bincount(labels[members], minlength=len(names))
    sums = [np.bincount(labels[members], weights=pixels[members, axis], minlength=len(counts)) for axis in (0, 1)]
    centres = np.stack(sums, axis=1) / np.maximum(counts, 1)[:, None]
    named = [int(c) for c in np.argsort(-counts, kind="stable")[:MAX_NAMED_CLUSTERS] if counts[c]]
    anchors = [(int(round(centres[c, 0])), int(round(centres[c, 1]))) for c in named]
    for cluster, (x, y) in zip(named, anchors, strict=True):
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=WHITE, outline=BLACK, width=2)
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour(cluster))
    texts = [_fit(draw, f"cl_{c} {names[c]}", font, 230) for c in named]
    extents = [draw.textbbox((0, 0), text, font=font) for text in texts]
    sizes = [(int(x1 - x0) + 8, int(y1 - y0) + 6) for x0, y0, x1, y1 in extents]
    centres_marked = [(x - 7, y - 7, x + 7, y + 7) for x, y in anchors]
    boxes = place_labels(anchors, sizes, (plot[0] + 2, plot[1] + 2, plot[2] - 2, plot[3] - 2), avoid=centres_marked)
    for cluster, text, box in zip(named, texts, boxes, strict=True):
        if box is None:
            continue
        draw.rounded_rectangle(box, radius=3, fill=WHITE, outline=colour(cluster), width=2)
        draw.text((box[0] + 4, (box[1] + box[3]) / 2), text, fill=BLACK, font=font, anchor="lm")  # 4 px padding


def _legend(draw: ImageDraw.ImageDraw, names: Sequence[str], sizes: Sequence[int], num_noise: int, area: Box) -> None:
    """One row per cluster (marker, id, name, share), as many as fit, then noise, named as such."""
    left, top, right, bottom = area
    font, pitch = _font(13), 20
    total = int(sum(sizes)) + num_noise
    draw.text((left + 4, top), "Clusters (share of documents)", fill=INK, font=_font(14))
    rows = max((bottom - top - 30) // pitch - (2 if num_noise else 0), 1)
    shown = list(range(len(names))) if len(names) <= rows else list(range(rows - 1))
    y = top + 30
    for cluster in shown:
        _draw_marker(draw, left + 12, y + pitch // 2, cluster)
        text = _fit(draw, f"cl_{cluster} {names[cluster]}", font, right - left - 100)
        draw.text((left + 26, y + pitch // 2), text, fill=INK, font=font, anchor="lm")
        draw.text((right, y + pitch // 2), share(int(sizes[cluster]), total), fill=INK, font=font, anchor="rm")
        y += pitch
    if len(shown) < len(names):
        draw.text((left + 26, y + pitch // 2), f"… {len(names) - len(shown)} more (sizes chart)", fill=INK,
                  font=font, anchor="lm")  # fmt: skip
        y += pitch
    if num_noise:
        _draw_marker(draw, left + 12, y + pitch // 2, -1)
        draw.text((left + 26, y + pitch // 2), "noise: in no cluster", fill=INK, font=font, anchor="lm")
        draw.text((right, y + pitch // 2), share(num_noise, total), fill=INK, font=font, anchor="rm")


def sizes_png(sizes: Sequence[int], cluster_labels: Sequence[str], num_noise: int = 0) -> bytes:
    """Horizontal bars of cluster sizes (cluster order: largest on top), noise as its own grey bar;
    each bar's count and share written after it, inside the frame."""
    font, bar_pitch = _font(13), 24
    probe = GlyphDraw(Image.new("RGB", (1, 1)))
    names = [_fit(probe, f"cl_{i} {label}", font, 420) for i, label in enumerate(cluster_labels)]
    values = [int(v) for v in sizes]
    colours = [colour(i) for i in range(len(values))]
    if num_noise:
        names.append("noise (in no cluster)")
        values.append(int(num_noise))
        colours.append(NOISE_COLOUR)
    total = sum(values)
    texts = [f"{value:,} ({share(value, total)})" for value in values]
    height = TITLE_HEIGHT + bar_pitch * max(len(values), 1) + 44
    image = Image.new("RGB", (WIDTH, height), WHITE)
    draw = GlyphDraw(image)
    left = MARGIN + int(max((draw.textlength(n, font=font) for n in names), default=0)) + 12
    # the longest bar ends where its numbers (the widest they can be) still fit inside the picture
    right = WIDTH - MARGIN - int(draw.textlength(f"{max(values, default=0):,} (100.0 %)", font=font)) - 10
    largest = max(values, default=0) or 1
    for row, (name, value, text, fill) in enumerate(zip(names, values, texts, colours, strict=True)):
        top = TITLE_HEIGHT + row * bar_pitch
        end = left + max(int(round((right - left) * value / largest)), 1)
        draw.rectangle((left, top + 4, end, top + bar_pitch - 4), fill=fill)
        if row < len(cluster_labels) and marker(row) != "disc":  # a hue's second use and beyond: its marker, hatched
            for x in range(left + 10, end - 6, 22):
                _draw_marker(draw, x, top + bar_pitch // 2, row, fill=WHITE, size=4)
        draw.text((left - 8, top + bar_pitch / 2), name, fill=INK, font=font, anchor="rm")
        draw.text((end + 6, top + bar_pitch / 2), text, fill=INK, font=font, anchor="lm")
    axis = TITLE_HEIGHT + bar_pitch * max(len(values), 1) + 4
    draw.line((left, TITLE_HEIGHT, left, axis), fill=(120, 120, 120))
    draw.text(((left + right) / 2, axis + 10), "documents (share of all)", fill=INK, font=font, anchor="mt")
    _title(draw, "Cluster sizes", WIDTH)
    return _png(image)


def auto_k_png(auto_k: AutoK, width: int = 640, height: int = 360) -> bytes:
    """The automatic-k curve: the silhouette of each k tried, the chosen k marked."""
    ks = sorted(auto_k.scores)
    image = Image.new("RGB", (width, height), WHITE)
    draw = GlyphDraw(image)
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
            draw.text((left - 6, at(ks[0], value)[1]), f"{value:.3f}", fill=INK, font=_font(11), anchor="rm")
        x, y = at(auto_k.chosen, auto_k.scores.get(auto_k.chosen, low))
        draw.text((x + 8, y - 8), f"k = {auto_k.chosen}", fill=BLACK, font=font, anchor="ls")
    draw.text(((left + right) / 2, height - 18), auto_k.parameter, fill=INK, font=font, anchor="mt")
    _title(draw, f"Silhouette by {auto_k.parameter} (k-means, {auto_k.sample_size:,} sampled documents)", width)
    return _png(image)
