"""The interactive map of an execution, a tool to explore it: its documents in the clustering's own
2-D layout (``render.layout``), each cluster named on the map, a search box that rings the documents
whose title or text holds the words typed, and colour by cluster or by any metadata column.

At execution, ``map_table`` keeps the layout's points — a cluster-stratified sample of at most
``MAX_MAP_POINTS`` (100,000) — with each document's id, the start of its title and text, and its
scalar metadata columns: a Parquet file beside the result, so a later report needs neither the
collection (which may have changed) nor the vectors, and the next execution aligns its layout to it.
At report time, ``map_html`` writes the points as JSON and draws them with plotly's WebGL scatter
(``scattergl``: 100,000 points stay fluid where SVG stalls at a few thousand); plotly.js is inlined
(~4.6 MB), so the page needs no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.labels.offline import text_columns
from cluster_pipeline.core.render.plots import MAX_MAP_POINTS, Projection, hex_colour, marker
from cluster_pipeline.core.store.results import Centroid

HOVER_CHARS = 160
METADATA_PREFIX = "metadata."  # map columns holding the documents' own metadata, by their name after it
MAX_METADATA_COLUMNS = 20
MAX_METADATA_CHARS = 80
MAX_CATEGORIES = 24  # a column with more values colours the most frequent ones, the rest as "other"
LABEL_CHARS = 32
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
    rows the projection was drawn from (``document_id``, the text columns, the metadata)."""
    points = projection.sample(max_points)
    rows = points.rows
    texts = sorted(text_columns(documents, text_fields), key=lambda c: c != "title")
    table = pa.table(
        {
            "document_id": pa.array(documents["document_id"].iloc[rows].astype(str).tolist(), pa.string()),
            "cluster_index": pa.array(points.labels.astype(np.int32)),
            "x": pa.array(points.xy[:, 0].astype(np.float32)),
            "y": pa.array(points.xy[:, 1].astype(np.float32)),
            "text": _excerpts(documents, rows, texts),
        },
        schema=MAP_SCHEMA,
    )
    for name in [c for c in documents.columns if c != "document_id" and c not in texts][:MAX_METADATA_COLUMNS]:
        column = _metadata_column(documents[name].iloc[rows])
        if column is not None:
            table = table.append_column(METADATA_PREFIX + str(name), column)
    return table


def _metadata_column(values: pd.Series) -> pa.Array | None:
    """A metadata column as the map keeps it: numbers and booleans as they are, anything else scalar
    as text cut to ``MAX_METADATA_CHARS``; None for lists, structs and binary values."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return pa.array(values.to_numpy(), from_pandas=True)
    if not all(v is None or isinstance(v, str | int | float | bool | pd.Timestamp) for v in values.head(200)):
        return None
    text = pa.array(values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v)))
    return pc.utf8_slice_codeunits(text.cast(pa.string()), 0, MAX_METADATA_CHARS)


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


def map_data(table: pa.Table, centroids: Sequence[Centroid]) -> dict[str, object]:
    """What the page draws: the points (coordinates to 4 decimals), the clusters (name, label, colour,
    marker) and each metadata column, categorical (codes into its most frequent values) or numeric."""
    clusters = [
        {
            "index": index,
            "name": f"cl_{index} {c.label}",
            "label": c.label if len(c.label) <= LABEL_CHARS else c.label[: LABEL_CHARS - 1].rstrip() + "…",
            "colour": hex_colour(index),
            "symbol": PLOTLY_SYMBOLS[marker(index)],
        }
        for index, c in enumerate(centroids)
    ]
    metadata: dict[str, object] = {}
    for name in table.column_names:
        if not name.startswith(METADATA_PREFIX):
            continue
        column = table.column(name).combine_chunks()
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            values = [None if v is None else round(float(v), 6) for v in column.to_pylist()]
            metadata[name[len(METADATA_PREFIX) :]] = {"kind": "numeric", "values": values}
            continue
        text = column.cast(pa.string()).fill_null("(none)")
        counts = pc.value_counts(text).to_pylist()
        names = [c["values"] for c in sorted(counts, key=lambda c: (-c["counts"], c["values"]))][:MAX_CATEGORIES]
        codes = pc.fill_null(pc.index_in(text, value_set=pa.array(names, pa.string())), len(names))
        if len(counts) > len(names):
            names.append("other")
        metadata[name[len(METADATA_PREFIX) :]] = {"kind": "categorical", "names": names, "values": codes.to_pylist()}
    return {
        "clusters": clusters,
        "x": [round(v, 4) for v in table.column("x").to_pylist()],
        "y": [round(v, 4) for v in table.column("y").to_pylist()],
        "cluster": table.column("cluster_index").to_pylist(),
        "text": table.column("text").to_pylist(),
        "id": table.column("document_id").to_pylist(),
        "metadata": metadata,
        "noise_colour": hex_colour(-1),
    }


def map_html(table: pa.Table, centroids: Sequence[Centroid], element_id: str = "cluster-map") -> str:
    """The map as an HTML fragment — controls, the plot, its data and plotly.js inlined: works offline,
    in any browser."""
    import plotly.offline

    data = json.dumps(map_data(table, centroids), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    options = "".join(
        f'<option value="{_attribute(name)}">{_attribute(name)}</option>' for name in map_data_columns(table)
    )
    return (
        f'<div class="map-tools"><label>Search <input type="search" id="{element_id}-search" size="28" '
        'placeholder="words in a title or text"></label> '
        f'<span id="{element_id}-matches" class="map-matches"></span> '
        f'<label>Colour by <select id="{element_id}-colour"><option value="">cluster</option>{options}</select>'
        f'</label></div><div id="{element_id}" style="height:760px"></div>'
        f'<script type="application/json" id="{element_id}-data">{data}</script>'
        f"<script>{plotly.offline.get_plotlyjs()}</script>"
        f"<script>{MAP_SCRIPT.replace('__ID__', element_id)}</script>"
    )


def map_data_columns(table: pa.Table) -> list[str]:
    """The metadata columns the map can colour by."""
    return [name[len(METADATA_PREFIX) :] for name in table.column_names if name.startswith(METADATA_PREFIX)]


def _attribute(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# The page's behaviour: traces per cluster (or per category of a metadata column, or one coloured by
# a numeric one), cluster labels as annotations at each cluster's median point, a ringed overlay of
# the documents matching the search. Plain JavaScript over the JSON above; plotly draws.
MAP_SCRIPT = """
(function () {
  const element = document.getElementById("__ID__");
  const data = JSON.parse(document.getElementById("__ID__-data").textContent);
  const search = document.getElementById("__ID__-search");
  const colour = document.getElementById("__ID__-colour");
  const matches = document.getElementById("__ID__-matches");
  const n = data.x.length;
  // WebGL where the browser has it (fluid at 100,000 points), else SVG, which draws the same map slowly
  const canvas = document.createElement("canvas");
  const kind = canvas.getContext("webgl2") || canvas.getContext("webgl") ? "scattergl" : "scatter";
  const hover = data.text.map((text, i) => text + "<br><i>" + data.id[i] + "</i>");
  const lower = data.text.map((text, i) => (text + " " + data.id[i]).toLowerCase());
  const palette = data.clusters.map((c) => c.colour);
  const extra = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#7000a0",
                 "#505000", "#900020", "#404040", "#8c564b"];
  function trace(name, rows, marker) {
    return {type: kind, mode: "markers", name: name, x: rows.map((i) => data.x[i]),
            y: rows.map((i) => data.y[i]), text: rows.map((i) => hover[i]),
            hovertemplate: "<b>%{fullData.name}</b><br>%{text}<extra></extra>", marker: marker};
  }
  function groups(codes, count) {
    const rows = Array.from({length: count}, () => []);
    codes.forEach((code, i) => { if (code !== null && code >= 0 && code < count) rows[code].push(i); });
    return rows;
  }
  function clusterTraces() {
    const rows = groups(data.cluster, data.clusters.length);
    const traces = data.clusters.map((c, k) => trace(c.name, rows[k], {color: c.colour, symbol: c.symbol, size: 5,
      opacity: 0.75, line: {width: c.symbol === "circle" ? 0 : 1.5, color: c.colour}}));
    const noise = [];
    data.cluster.forEach((c, i) => { if (c < 0) noise.push(i); });
    if (noise.length) traces.push(trace("noise (in no cluster)", noise, {color: data.noise_colour, size: 4, opacity: 0.5}));
    return traces;
  }
  function metadataTraces(name) {
    const column = data.metadata[name];
    if (column.kind === "numeric") {
      const rows = [];
      column.values.forEach((v, i) => { if (v !== null) rows.push(i); });
      const t = trace(name, rows, {color: rows.map((i) => column.values[i]), colorscale: "Viridis", size: 5,
                                   opacity: 0.8, showscale: true, colorbar: {title: {text: name}}});
      return [t];
    }
    return groups(column.values, column.names.length).map((rows, k) => trace(column.names[k], rows,
      {color: column.names[k] === "other" ? data.noise_colour : extra[k % extra.length], size: 5, opacity: 0.75}));
  }
  function labels() {
    return data.clusters.map((c, k) => {
      const xs = [], ys = [];
      data.cluster.forEach((cluster, i) => { if (cluster === k) { xs.push(data.x[i]); ys.push(data.y[i]); } });
      if (!xs.length) return null;
      const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
      return {x: median(xs), y: median(ys), text: c.label, showarrow: false, font: {size: 11, color: "#111"},
              bgcolor: "rgba(255,255,255,0.85)", bordercolor: c.colour, borderwidth: 1.5, borderpad: 2};
    }).filter((a) => a !== null);
  }
  const annotations = labels();
  function found() {
    const words = search.value.toLowerCase().split(/\\s+/).filter((w) => w);
    if (!words.length) return [];
    const rows = [];
    for (let i = 0; i < n; i++) if (words.every((w) => lower[i].includes(w))) rows.push(i);
    return rows;
  }
  function draw() {
    const by = colour.value;
    const traces = by ? metadataTraces(by) : clusterTraces();
    const rows = found();
    traces.push(trace("search matches", rows, {size: 11, color: "rgba(0,0,0,0)", line: {width: 2, color: "#000"}}));
    matches.textContent = search.value.trim() ? rows.length.toLocaleString() + " matching documents" : "";
    Plotly.react(element, traces, {
      margin: {l: 10, r: 10, t: 30, b: 10}, xaxis: {visible: false}, yaxis: {visible: false, scaleanchor: "x"},
      legend: {title: {text: (by ? by : "Clusters") + " (click to hide or show)"}, itemsizing: "constant"},
      hoverlabel: {align: "left"}, plot_bgcolor: "white", annotations: annotations,
    }, {displaylogo: false, responsive: true});
  }
  search.addEventListener("input", draw);
  colour.addEventListener("change", draw);
  draw();
})();
"""
