"""The interactive map of an execution: its documents in 2-D, hover for a document, toggle clusters.

At execution, ``map_table`` keeps the projection picture's points, thinned to a cluster-stratified
sample of at most ``MAX_MAP_POINTS``, with each document's id and the start of its title/text: a
small Parquet file beside the result, so a later report needs neither the collection (which may have
changed) nor the vectors. At report time, ``map_html`` draws it with plotly, one trace per cluster
(the legend toggles it), noise grey, colours and markers as in the picture; plotly.js is inlined
(~4.6 MB of the report, whatever the run's size), so the page works with no network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.labels.offline import text_columns
from cluster_pipeline.core.render.plots import MAX_MAP_POINTS, Projection, hex_colour, marker
from cluster_pipeline.core.store.results import Centroid

HOVER_CHARS = 160
MAP_SCHEMA = pa.schema(
    [
        pa.field("document_id", pa.string()),
        pa.field("cluster_index", pa.int32()),  # -1 for noise
        pa.field("x", pa.float32()),
        pa.field("y", pa.float32()),
        pa.field("text", pa.string()),  # the start of the document's title and text
    ]
)
# plotly's symbols for the picture's markers (disc, plus, cross, square)
PLOTLY_SYMBOLS = {"disc": "circle", "plus": "cross-thin-open", "cross": "x-thin-open", "square": "square-open"}


def map_table(
    projection: Projection,
    documents: pd.DataFrame,
    text_fields: Sequence[str] | None = None,
    max_points: int = MAX_MAP_POINTS,
) -> pa.Table:
    """The map's points: a stratified sample of ``projection``; ``documents`` rows align with the
    rows the projection was drawn from (``document_id`` and the text columns)."""
    points = projection.sample(max_points)
    rows = points.rows
    columns = sorted(text_columns(documents, text_fields), key=lambda c: c != "title")
    texts = _excerpts(documents, rows, columns)
    return pa.table(
        {
            "document_id": pa.array(documents["document_id"].iloc[rows].astype(str).tolist(), pa.string()),
            "cluster_index": pa.array(points.labels.astype(np.int32)),
            "x": pa.array(points.xy[:, 0].astype(np.float32)),
            "y": pa.array(points.xy[:, 1].astype(np.float32)),
            "text": texts,
        },
        schema=MAP_SCHEMA,
    )


def _excerpts(documents: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pa.Array:
    """Title, then text, of each row joined by ' — ', whitespace folded, cut at ``HOVER_CHARS``
    (Arrow kernels: no Python per document)."""
    if not columns:
        return pa.array([""] * len(rows), pa.string())
    parts = []
    for column in columns:
        values = pa.array(documents[column].iloc[rows].astype(object), pa.string(), from_pandas=True)
        start = pc.utf8_slice_codeunits(values, 0, 2 * HOVER_CHARS)
        folded = pc.utf8_trim_whitespace(pc.binary_join(pc.utf8_split_whitespace(start), " "))
        parts.append(pc.if_else(pc.equal(folded, ""), pa.scalar(None, pa.string()), folded))
    joined = pc.fill_null(pc.binary_join_element_wise(*parts, " — ", null_handling="skip"), "")
    cut = pc.binary_join_element_wise(
        pc.utf8_rtrim_whitespace(pc.utf8_slice_codeunits(joined, 0, HOVER_CHARS - 1)), "…", ""
    )
    return pc.if_else(pc.greater(pc.utf8_length(joined), HOVER_CHARS), cut, joined)


def map_figure(table: pa.Table, centroids: Sequence[Centroid]) -> dict[str, object]:
    """A plotly figure (as a dict): a scatter trace per cluster, in cluster order, then noise."""
    data = table.to_pandas()
    names = {index: f"cl_{index} {c.label}" for index, c in enumerate(centroids)}
    traces = []
    for index in [*range(len(centroids)), -1]:
        points = data[data.cluster_index == index]
        if points.empty:
            continue
        name = names.get(index, "noise (in no cluster)")
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": points.x.round(4).tolist(),
                "y": points.y.round(4).tolist(),
                "customdata": [[name, text, doc] for text, doc in zip(points.text, points.document_id, strict=True)],
                "hovertemplate": "<b>%{customdata[0]}</b><br>%{customdata[1]}<br><i>%{customdata[2]}</i>"
                "<extra></extra>",
                "marker": {
                    "color": hex_colour(index),
                    "symbol": PLOTLY_SYMBOLS[marker(index)],
                    "size": 6,
                    "opacity": 0.75 if index >= 0 else 0.5,
                    "line": {"width": 1.5 if marker(index) != "disc" else 0, "color": hex_colour(index)},
                },
            }
        )
    return {
        "data": traces,
        "layout": {
            "height": 720,
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False, "scaleanchor": "x"},
            "legend": {"title": {"text": "Clusters (click to hide or show)"}, "itemsizing": "constant"},
            "hoverlabel": {"align": "left"},
            "plot_bgcolor": "white",
        },
    }


def map_html(table: pa.Table, centroids: Sequence[Centroid], element_id: str = "cluster-map") -> str:
    """The map as an HTML fragment with plotly.js inlined: works offline, in any browser."""
    import plotly.io

    return str(
        plotly.io.to_html(
            map_figure(table, centroids),
            include_plotlyjs=True,
            full_html=False,
            div_id=element_id,
            config={"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]},
            validate=False,
        )
    )
