"""Pictures of the topic tree (a dendrogram) and of topics over time (shares per bucket), drawn with
Pillow in the style of ``render.plots`` (its fonts, colours and PNG encoding)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from cluster_pipeline.core.render.glyphs import GlyphDraw
from cluster_pipeline.core.render.plots import (
    FRAME,
    INK,
    MARGIN,
    NOISE_COLOUR,
    TITLE_HEIGHT,
    WHITE,
    WIDTH,
    _draw_marker,
    _fit,
    _font,
    _png,
    _title,
    colour,
)
from cluster_pipeline.core.store.results import ExecutionResult
from cluster_pipeline.core.topics.over_time import shares_by_cluster
from cluster_pipeline.core.topics.structure import TopicStructure

ROW = 24
MAX_NAMED_NODES = 8  # the highest merges are numbered, their labels listed beside the tree
MERGE_COLUMN = 300  # pixels of the column listing the numbered merges' labels
NOTE_LINE = 16
DISTANCE_AXIS = "cosine distance between merged centroids (average linkage)"
MAX_SERIES = 10  # clusters drawn on their own over time; the rest are one grey band


def _leaf_order(hierarchy: dict[str, Any]) -> list[str]:
    """Leaves in the order that keeps every merge's members together (root first, depth first)."""
    nodes = {node["id"]: node for node in hierarchy["nodes"]}
    order: list[str] = []
    stack = [hierarchy["nodes"][-1]["id"]]
    while stack:
        current = stack.pop()
        if current in nodes:
            stack.extend(reversed(nodes[current]["children"]))
        else:
            order.append(current)
    return order


def wrap_words(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> list[str]:
    """``text`` in lines of whole words that fit ``width`` pixels (a single word too wide for a line
    alone is the only thing ever cut, with an ellipsis)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(_fit(draw, word, font, width))
    return lines


def dendrogram_png(hierarchy: dict[str, Any], leaf_labels: dict[str, str], sizes: dict[str, int]) -> bytes:
    """The topic tree: one row per cluster (its marker, name and size), merges to the right at their
    cosine distance; the highest merges numbered at their joint, their labels whole in a column of
    their own on the right (so no label crosses a bracket)."""
    order = _leaf_order(hierarchy)
    font, small = _font(13), _font(12)
    probe = GlyphDraw(Image.new("RGB", (1, 1)))
    named = hierarchy["nodes"][-MAX_NAMED_NODES:][::-1]  # the root first
    notes = [
        wrap_words(probe, f"{number}. {node['label']}", small, MERGE_COLUMN - 12)
        for number, node in enumerate(named, 1)
    ]
    rows_height = ROW * len(order)
    notes_height = sum(NOTE_LINE * len(lines) + 6 for lines in notes) + 24
    height = TITLE_HEIGHT + max(rows_height, notes_height) + 60
    image = Image.new("RGB", (WIDTH, height), WHITE)
    draw = GlyphDraw(image)
    names = {
        leaf: _fit(draw, f"{leaf} {leaf_labels.get(leaf, '')} ({sizes.get(leaf, 0):,})", font, 360) for leaf in order
    }
    left = MARGIN + int(max(draw.textlength(n, font=font) for n in names.values())) + 20
    right = WIDTH - MARGIN - MERGE_COLUMN - 24
    top, bottom = TITLE_HEIGHT + 8, TITLE_HEIGHT + 8 + rows_height
    highest = max(node["distance"] for node in hierarchy["nodes"]) or 1.0
    y = {leaf: top + ROW * (row + 0.5) for row, leaf in enumerate(order)}
    x = dict.fromkeys(order, float(left))
    for leaf in order:
        index = int(leaf.split("_")[1])
        draw.text((left - 14, y[leaf]), names[leaf], fill=INK, font=font, anchor="rm")
        _draw_marker(draw, left - 6, y[leaf], index, size=4)
    for node in hierarchy["nodes"]:
        a, b = node["children"]
        at = left + (right - left) * node["distance"] / highest
        for child in (a, b):
            draw.line((x[child], y[child], at, y[child]), fill=INK, width=2)
        draw.line((at, y[a], at, y[b]), fill=INK, width=2)
        x[node["id"]], y[node["id"]] = at, (y[a] + y[b]) / 2
    for number, node in enumerate(named, 1):  # a numbered disc on the joint, the number's label on the right
        cx, cy = x[node["id"]], y[node["id"]]
        draw.ellipse((cx - 9, cy - 9, cx + 9, cy + 9), fill=WHITE, outline=INK, width=2)
        draw.text((cx, cy), str(number), fill=INK, font=small, anchor="mm")
    note_y = top + 22
    draw.text((right + 24, top), "Merges (numbered on the tree)", fill=INK, font=font)
    for lines in notes:
        for line in lines:
            draw.text((right + 24, note_y), line, fill=(70, 70, 70), font=small)
            note_y += NOTE_LINE
        note_y += 6
    axis = bottom + 6
    draw.line((left, axis, right, axis), fill=FRAME)
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        tick = left + (right - left) * fraction
        draw.line((tick, axis, tick, axis + 4), fill=FRAME)
        draw.text((tick, axis + 6), f"{highest * fraction:.2f}", fill=INK, font=small, anchor="mt")
    draw.text(((left + right) / 2, axis + 24), DISTANCE_AXIS, fill=INK, font=small, anchor="mt")
    _title(draw, f"Topic hierarchy of {len(order)} clusters", WIDTH)
    return _png(image)


def over_time_png(
    buckets: list[pd.Timestamp], shares: dict[int, np.ndarray], cluster_labels: list[str], granularity: str
) -> bytes:
    """Each cluster's share of the documents per time bucket, stacked to 100 % (noise grey at the
    bottom); the ten largest clusters in their colours, the rest as one light band."""
    height = 560
    image = Image.new("RGB", (WIDTH, height), WHITE)
    draw = GlyphDraw(image)
    font, small = _font(13), _font(12)
    left, top, right, bottom = 64, TITLE_HEIGHT + 10, WIDTH - MARGIN - 330, height - 56
    draw.rectangle((left, top, right, bottom), outline=FRAME)
    n = len(buckets)
    layers: list[tuple[str, tuple[int, int, int], np.ndarray]] = []
    if -1 in shares:
        layers.append(("noise (in no cluster)", NOISE_COLOUR, shares[-1]))
    clusters = sorted(c for c in shares if c >= 0)
    for c in clusters[:MAX_SERIES]:
        layers.append((f"cl_{c} {cluster_labels[c] if c < len(cluster_labels) else ''}", colour(c), shares[c]))
    if len(clusters) > MAX_SERIES:
        rest = np.sum([shares[c] for c in clusters[MAX_SERIES:]], axis=0)
        layers.append((f"{len(clusters) - MAX_SERIES} other clusters", (225, 225, 225), rest))

    def y_of(share: float) -> float:
        return bottom - (bottom - top) * share

    xs = left + (right - left) * (np.arange(n) / max(n - 1, 1)) if n > 1 else np.array([(left + right) / 2])
    base = np.zeros(n)
    for _, fill, values in layers:
        upper = base + values
        if n == 1:
            draw.rectangle((left, y_of(upper[0]), right, y_of(base[0])), fill=fill)
        else:
            outline = zip(np.concatenate([xs, xs[::-1]]), np.concatenate([upper, base[::-1]]), strict=True)
            draw.polygon([(float(px), y_of(float(v))) for px, v in outline], fill=fill)
        base = upper
    for fraction in (0.0, 0.5, 1.0):
        draw.text((left - 6, y_of(fraction)), f"{fraction:.0%}", fill=INK, font=small, anchor="rm")
    step = max(1, n // 6)
    for i in range(0, n, step):
        px = float(xs[i])
        draw.line((px, bottom, px, bottom + 4), fill=FRAME)
        text = buckets[i].strftime("%Y-%m" if granularity == "month" else "%Y-%m-%d")
        draw.text((px, bottom + 6), text, fill=INK, font=small, anchor="mt")
    draw.text(((left + right) / 2, height - 22), f"{granularity} (UTC)", fill=INK, font=small, anchor="mt")
    for row, (name, fill, _) in enumerate(reversed(layers)):
        ly = top + row * 22
        draw.rectangle((right + 16, ly + 4, right + 30, ly + 18), fill=fill, outline=FRAME)
        text = _fit(draw, name, font, WIDTH - MARGIN - right - 40)
        draw.text((right + 38, ly + 11), text, fill=INK, font=font, anchor="lm")
    _title(draw, f"Topics over time: share of each {granularity}'s documents", WIDTH)
    return _png(image)


def topic_pictures(result: ExecutionResult, topics: TopicStructure) -> dict[str, bytes]:
    """The dendrogram (``hierarchy``) and the shares over time (``over_time``) an execution has."""
    centroids = result.centroids or []
    images = {}
    if topics.hierarchy is not None:
        labels = {c.cluster_id: c.label for c in centroids}
        sizes = {c.cluster_id: c.num_members for c in centroids}
        images["hierarchy"] = dendrogram_png(topics.hierarchy, labels, sizes)
    if topics.over_time is not None:
        buckets, shares = shares_by_cluster(topics.over_time.table)
        granularity = str(topics.over_time.summary["granularity"])
        images["over_time"] = over_time_png(buckets, shares, [c.label for c in centroids], granularity)
    return images
