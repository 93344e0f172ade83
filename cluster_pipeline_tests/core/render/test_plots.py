"""The pictures: distinct colours, a wide projection with a legend, labels that never overlap,
value labels inside the frame."""

import io
import itertools

import numpy as np
from coloraide import Color
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cluster_pipeline.core.render.plots import (
    LEGEND_WIDTH,
    MARGIN,
    NOISE_COLOUR,
    colour,
    marker,
    place_labels,
    project,
    projection_png,
    sizes_png,
)

# CIEDE2000: about 2 is a just-noticeable difference between two patches side by side; 20 is two
# colours a person names differently at a glance, as small dots. matplotlib's tab20, which paired
# a hue with its light twin, has pairs at ~10 — the "two oranges" users could not tell apart.
MIN_DELTA_E = 20.0


def delta_e(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return Color("srgb", [v / 255 for v in a]).delta_e(Color("srgb", [v / 255 for v in b]), method="2000")


def _image(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.verify()
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_the_first_ten_cluster_colours_are_far_apart_and_from_the_noise_grey():
    first_ten = [colour(i) for i in range(10)]
    assert min(delta_e(a, b) for a, b in itertools.combinations(first_ten, 2)) >= MIN_DELTA_E
    assert min(delta_e(c, NOISE_COLOUR) for c in first_ten) >= MIN_DELTA_E
    tab20_pair = delta_e((255, 127, 14), (255, 187, 120))  # tab20's orange and light orange
    assert tab20_pair < MIN_DELTA_E
    # beyond ten, a hue comes back with another marker: no two of the first 40 clusters look alike
    looks = {(colour(i), marker(i)) for i in range(40)}
    assert len(looks) == 40 and colour(-1) == NOISE_COLOUR


def test_projection_is_wide_has_a_legend_and_samples_large_inputs():
    rng = np.random.default_rng(0)
    space = rng.normal(size=(30_000, 20)).astype(np.float32)
    labels = rng.integers(-1, 3, size=30_000)
    projection = project(space, labels, max_points=5_000)
    assert len(projection.rows) == 5_000 and projection.total == 30_000
    assert set(np.unique(projection.labels)) == {-1, 0, 1, 2}  # stratified: every cluster and the noise
    sizes = np.bincount(labels[labels >= 0])
    png = projection_png(projection, ["Rockets", "Pasta", "Football"], sizes, int((labels < 0).sum()))
    image = _image(png)
    assert image.size[0] >= 1000 and image.size[1] >= 600
    assert 10_000 < len(png) < 400_000
    pixels = np.asarray(image)
    legend = pixels[:, -LEGEND_WIDTH:].reshape(-1, 3)
    for cluster in (0, 1, 2, -1):  # each cluster's colour, and the noise grey, in the legend panel
        assert (np.abs(legend.astype(int) - colour(cluster)).sum(axis=1) < 30).sum() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 800), st.integers(0, 600), st.integers(20, 240), st.integers(12, 24)),
        min_size=1,
        max_size=40,
    )
)
def test_placed_labels_never_overlap_each_other_the_centres_or_the_frame(labels):
    anchors = [(x, y) for x, y, _, _ in labels]
    sizes = [(w, h) for _, _, w, h in labels]
    centres = [(x - 7, y - 7, x + 7, y + 7) for x, y in anchors]
    bounds = (0, 0, 800, 600)
    boxes = place_labels(anchors, sizes, bounds, avoid=centres)
    placed = [(box, size) for box, size in zip(boxes, sizes, strict=True) if box is not None]
    for index, ((left, top, right, bottom), (w, h)) in enumerate(placed):
        assert left >= 0 and top >= 0 and right <= 800 and bottom <= 600 and (right - left, bottom - top) == (w, h)
        others = [box for box, _ in placed[index + 1 :]] + centres
        assert not any(left < o[2] and o[0] < right and top < o[3] and o[1] < bottom for o in others)


def test_sizes_chart_keeps_its_numbers_inside_the_picture():
    long_name = "An extremely long cluster label that goes on and on about many different topics"
    image = _image(sizes_png([1_234_567, 30, 20], [long_name, "B", "C"], num_noise=7))
    pixels = np.asarray(image)
    assert image.size[0] >= 1000
    blank = pixels.min(axis=2) > 240  # white, give or take the palette's rounding
    assert blank[:, -MARGIN + 2 :].all()  # nothing drawn in the right margin: no number cut off
    assert blank[:, : MARGIN - 2].all()  # nor in the left one: the names fit
    ink = np.flatnonzero((pixels[40:70] < 128).any(axis=(0, 2)))  # the longest bar's row: its number is drawn
    assert ink.max() > image.size[0] - 200


def test_beyond_ten_clusters_a_repeated_hue_carries_its_marker_in_the_sizes_chart():
    pixels = np.asarray(_image(sizes_png([100] * 12, [f"topic {i}" for i in range(12)], num_noise=0))).astype(int)
    hue = np.abs(pixels - np.array(colour(0))).sum(axis=2) < 6  # cl_0 and cl_10 share it
    rows = np.flatnonzero(hue[:, pixels.shape[1] // 2])
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 2
    white = []
    for band in bands:
        middle = int(band.mean())
        span = np.flatnonzero(hue[middle])
        white.append((pixels[middle, span.min() : span.max()].min(axis=1) > 240).sum())
    assert white[0] == 0 and white[1] > 20  # cl_0 plain, cl_10 hatched with white markers


def test_merge_labels_wrap_on_whole_words():
    from PIL import ImageDraw

    from cluster_pipeline.core.render.plots import _font
    from cluster_pipeline.core.render.topic_plots import wrap_words

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = "1. Satellite / Telescope / Astronaut / Spacecraft / Orbit"
    lines = wrap_words(draw, text, _font(12), 120)
    assert len(lines) > 1 and " ".join(lines) == text
    assert all(draw.textlength(line, font=_font(12)) <= 120 for line in lines)
