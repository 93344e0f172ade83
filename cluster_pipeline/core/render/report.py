"""Human-readable renderings of an ExecutionResult: a markdown summary (Dagster UI) and a
self-contained HTML report (pictures and the interactive map inlined, text escaped) for people
without the UI. Numbers are shown to 4 significant digits (the result keeps them whole),
parameters as JSON.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.quality.checks import CheckOutcome, evaluate_checks
from cluster_pipeline.core.quality.verdict import percent
from cluster_pipeline.core.render.plots import MAX_MAP_POINTS, MAX_PLOT_POINTS, share
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import METRICS_UNAVAILABLE, ExecutionResult, format_timestamp
from cluster_pipeline.core.store.storage import read_parquet
from cluster_pipeline.core.topics.hierarchy import coarse_topics

SUMMARY_TOPICS = 3  # the summary names the tree's three coarsest topics
DAGSTER_URL_ENV_VAR = "CLUSTER_PIPELINE_DAGSTER_URL"
DEFAULT_DAGSTER_URL = "http://localhost:3000"
REDUCTION_ROWS = {  # e.g. "UMAP to 5 dimensions (cosine, 15 neighbours; fitted on 20,000, 80,000 placed; 3.2 s)"
    "umap": "UMAP to {n_components} dimensions (cosine, {n_neighbors} neighbours; fitted on {fitted_documents:,}"
    "{placed}; {seconds:.1f} s)",
    "pca": "PCA to {n_components} dimensions ({explained_variance_ratio:.0%} of the variance)",
}
AUTO_K_ROW = "{parameter}={chosen} chosen by {criterion} ({sample_size:,} documents), k from {k_min} to {k_max}"
TOPIC_REDUCTION_ROW = "{found} clusters found, merged to {kept} (max_clusters={max_clusters})"
TOPICS_ROW = (
    "coherence (NPMI) {coherence_npmi:.3f} (documents: {coherence_npmi_document:.3f}), diversity {topic_diversity:.2f}"
)
LLM_ROW = "{model}: {calls} calls, {total_tokens} tokens, {cache_hits} cached, {fallbacks} fallbacks"
LAYOUT_METHODS = {"umap": "UMAP of the clustering's neighbour graph", "pca": "PCA"}
LLM_USAGE_DEFAULTS = {"model": None, "calls": 0, "total_tokens": 0, "cache_hits": 0, "fallbacks": 0}
OVER_TIME_ROW = "by {granularity} of {column}, {buckets} buckets from {start:.10} to {end:.10}"
CAPTIONS = {  # in figure order
    "projection": "The documents in two dimensions, in the space the algorithm saw (a 2-D UMAP of its own neighbour "
    "graph when it ran on UMAP, else PCA; named in the title), turned to match the previous execution's picture; "
    f"at most {MAX_PLOT_POINTS:,} drawn, sampled by cluster), each coloured by its cluster. Grey points are noise: "
    "documents in no cluster. A ringed dot marks each cluster's centre, labelled where there is room; the legend "
    "names every cluster with its share of the documents.",
    "sizes": "Documents per cluster, cl_0 the largest; the grey bar is noise (documents in no cluster). "
    "Each bar gives its count and its share of all documents.",
    "auto_k": "How k was chosen: the silhouette of a k-means fit for each k tried, on a sample of the "
    "documents; the chosen k is marked.",
    "hierarchy": "The topic tree: clusters whose centres are close in the embedding space merge first (average "
    "linkage of cosine distances, read on the axis); the highest merges are named by the keywords of their "
    "documents taken together. Cutting it gives coarser topics: cluster-pipeline executions hierarchy RUN_ID "
    "--groups N.",
    "over_time": "Each cluster's share of the documents of each time bucket (day, week or month, chosen from the "
    "span), stacked to 100 %; grey is noise, the ten largest clusters have their colour and the rest share one band.",
}


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def number(value: float | None) -> str:
    """4 significant digits, '-' for none: 0.03775, 0.4121, 1234, 1.235e+05."""
    return "-" if value is None else f"{value:.4g}"


def _noise(result: ExecutionResult) -> str:
    """Noise count and share, e.g. "1,234 (16 %)", and how many were reassigned."""
    if not result.num_points:
        return f"{result.num_noise:,}"
    text = f"{result.num_noise:,} ({percent(result.num_noise / result.num_points)})"
    if result.num_noise_reassigned:
        text += f", {result.num_noise_reassigned:,} reassigned to their nearest cluster"
    return text


def describe_selection(selection: Mapping[str, Any] | None) -> str | None:
    """Which documents were clustered, when not simply all of them, each fitted on (filter, sample)."""
    if not selection:
        return None
    parts = []
    if selection.get("filter") is not None:
        parts.append(f"{selection['matched']:,} of {selection['collection_documents']:,} documents matched the filter")
    if selection.get("assigned_by"):
        how = str(selection["assigned_by"]).replace("_", " ")
        parts.append(f"fitted on a sample of {selection['fitted']:,}, the others assigned by {how}")
    return "; ".join(parts) or None


def drift_line(result: ExecutionResult) -> str | None:
    """'ARI 0.9123 against run_…: 3 stable, 1 new (cl_3), 0 gone', or None on a first execution."""
    drift = result.drift
    if not drift:
        return None
    new, gone = drift.get("new_clusters") or [], drift.get("gone_clusters") or []
    parts = [f"{len(drift.get('stable_clusters') or [])} stable"]
    parts.append(f"{len(new)} new" + (f" ({', '.join(new)})" if new else ""))
    parts.append(f"{len(gone)} gone" + (f" ({', '.join(gone)})" if gone else ""))
    return f"ARI {number(drift.get('adjusted_rand_index'))} against {drift.get('previous_run_id')}: {', '.join(parts)}"


def topics_line(metrics: Mapping[str, Any]) -> str | None:
    """The clusters' topic words as topic modelling judges them, e.g. "coherence (NPMI) 0.121 (documents:
    0.253), diversity 1.00"; None when they were not measured (no text)."""
    names = ("coherence_npmi", "coherence_npmi_document", "topic_diversity")
    return TOPICS_ROW.format_map(metrics) if all(metrics.get(name) is not None for name in names) else None


def split_line(splits: Mapping[str, Any] | None) -> str | None:
    """Which found cluster was split because it held most of the documents, e.g. "found_0 (most of the
    documents) into cl_0, cl_3, cl_5 (each at most 40 %)"."""
    if not splits or not splits.get("split"):
        return None
    limit = f"(each at most {percent(splits['max_cluster_fraction'])})"
    parts = (f"{parent} (most of the documents) into {', '.join(c)} {limit}" for parent, c in splits["split"].items())
    return "; ".join(parts)


def describe_layout(layout: Mapping[str, Any] | None) -> str | None:
    """'UMAP of the clustering's neighbour graph, aligned to run_… on 1,234 shared documents'."""
    if not layout:
        return None
    method = LAYOUT_METHODS.get(layout["method"], layout["method"])
    if layout["layout_stability"] != "aligned":
        return method
    return f"{method}, aligned to {layout['aligned_to']} on {layout['shared_documents']:,} shared documents"


def _filled(template: str, record: Mapping[str, Any] | None) -> str | None:
    return template.format_map(record) if record else None


def summary_rows(result: ExecutionResult, config: ClusterConfig | None = None) -> list[tuple[str, str]]:
    """The execution as (name, value) rows, in the order people read them; what it lacks is left out."""
    metrics = result.metrics or {}
    version = f" v{result.configuration_version}" if result.configuration_version else ""
    where = f"{result.cluster_id}{version}, {result.namespace}/{result.collection}, feature {result.feature}"
    quality = (
        str(metrics.get("description"))
        if metrics
        else (METRICS_UNAVAILABLE if result.status in ("failed", "canceled") else "-")
    )
    seconds = (result.completed_at - result.created_at).total_seconds() if result.completed_at else None
    usage = result.llm_usage and {**LLM_USAGE_DEFAULTS, **result.llm_usage}
    trigger = result.trigger and result.trigger + (f": {result.trigger_reason}" if result.trigger_reason else "")
    coarse = coarse_topics(result, SUMMARY_TOPICS) if result.hierarchy else []
    reduction = result.reduction or {}
    placed = f", {reduction['placed_documents']:,} placed" if reduction.get("placed_documents") else ""
    rows = [
        ("configuration", f"{config.display_name} ({where})" if config else where),
        ("run_id", result.run_id),
        ("algorithm", f"{result.algorithm} {json.dumps(result.parameters, sort_keys=True, default=str)}"),
        ("selection", describe_selection(result.selection)),
        ("reduction", _filled(REDUCTION_ROWS.get(reduction.get("method", ""), ""), {**reduction, "placed": placed})),
        ("automatic k", _filled(AUTO_K_ROW, result.auto_k)),
        ("split", split_line(result.cluster_splits)),
        ("topic reduction", _filled(TOPIC_REDUCTION_ROW, result.topic_reduction)),
        ("status", result.status),
        ("documents", f"{result.num_points:,}"),
        ("clusters", str(result.num_clusters)),
        ("noise", _noise(result)),
        ("silhouette", number(metrics.get("silhouette_score"))),
        ("Davies–Bouldin", number(metrics.get("davies_bouldin_index"))),
        ("Calinski–Harabasz", number(metrics.get("calinski_harabasz_score"))),
        ("quality", quality),
        ("topic words", topics_line(metrics)),
        ("metrics", result.coverage),
        ("note", result.quality_note),
        ("warning", result.warning),
        ("created", format_timestamp(result.created_at) or "-"),
        ("duration", "-" if seconds is None else f"{seconds:.1f} s"),
        ("LLM", _filled(LLM_ROW, usage)),
        ("vs previous", drift_line(result)),
        ("trigger", trigger),
        ("hierarchy", "; ".join(f"{t.label} ({', '.join(t.clusters)})" for t in coarse)),
        ("topics over time", _filled(OVER_TIME_ROW, result.topics_over_time)),
        ("layout", describe_layout(result.layout)),
        ("error", result.error_message),
    ]
    return [(name, value) for name, value in rows if value]


def check_rows(outcomes: Sequence[CheckOutcome]) -> list[tuple[str, str, str, str, str]]:
    """Per check: name, outcome, value, threshold, why."""
    return [(o.name, o.outcome, number(o.value), number(o.threshold), o.description) for o in outcomes]


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def markdown_summary(
    result: ExecutionResult, config: ClusterConfig | None = None, outcomes: Sequence[CheckOutcome] = ()
) -> str:
    """A markdown table of the execution, then its checks (skipped ones with the reason)."""
    title = config.display_name if config else result.cluster_id
    lines = [f"### {title} · {result.run_id} · {result.status}", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in summary_rows(result, config)]
    if outcomes:
        lines += ["", "| check | outcome | value | threshold | |", "| --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in check_rows(outcomes)]
    lines += [
        "",
        "The pictures are the entries named after them (`projection`, `sizes`, `hierarchy`, …); the clusters are "
        "in `clusters`.",
    ]
    return "\n".join(lines)


def html_report(
    result: ExecutionResult,
    images: Mapping[str, bytes],
    *,
    config: ClusterConfig | None = None,
    outcomes: Sequence[CheckOutcome] = (),
    map_fragment: str | None = None,
    dagster_url: str | None = None,
) -> str:
    """One self-contained HTML page: summary, link to the run, checks, pictures with captions, the
    interactive map, drift, clusters. Nothing is fetched when it is opened. The run's page in the Dagster
    UI is under ``dagster_url`` (default ``$CLUSTER_PIPELINE_DAGSTER_URL`` or http://localhost:3000, where
    ``dagster dev`` serves)."""
    e = html.escape
    title = config.display_name if config else result.cluster_id
    summary = "".join(f"<tr><th>{e(name)}</th><td>{e(value)}</td></tr>" for name, value in summary_rows(result, config))
    link = ""
    if result.dagster_run_id:
        base = (dagster_url or os.environ.get(DAGSTER_URL_ENV_VAR) or DEFAULT_DAGSTER_URL).rstrip("/")
        link = f'<p>Dagster run: <a href="{e(base)}/runs/{e(result.dagster_run_id)}">{e(result.dagster_run_id)}</a></p>'
    rows = "".join(
        f'<tr class="{e(row[1])}">' + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
        for row in check_rows(outcomes)
    )
    header = "<tr><th>check</th><th>outcome</th><th>value</th><th>threshold</th><th></th></tr>"
    checks = f"<h2>Checks</h2><table>{header}{rows}</table>" if outcomes else ""
    order = {name: index for index, name in enumerate(CAPTIONS)}
    ordered = sorted(images.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    figures = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption><b>Figure {number_}.</b> {e(CAPTIONS.get(name, name.replace('_', ' ').capitalize()))}"
        "</figcaption></figure>"
        for number_, (name, png) in enumerate(ordered, 1)
    )
    interactive = (
        "<h2>Interactive map</h2><p>Each cluster is named on the map. Search rings the documents whose title or "
        "text holds every word typed; colour by cluster or by any metadata column of the collection. Hover a point "
        "for its document; click an entry of the legend to hide or show it (double-click to show it alone). At "
        f"most {MAX_MAP_POINTS:,} documents, sampled by cluster, drawn with WebGL.</p>{map_fragment}"
        if map_fragment
        else ""
    )
    clusters = "".join(
        f"<tr><td>{e(c.cluster_id)}</td><td>{c.num_members:,}</td><td>{share(c.num_members, result.num_points)}"
        f"</td><td>{e(c.label)}</td><td>{e(c.summary)}</td><td>{e(', '.join(c.keywords))}</td>"
        f"<td>{e(c.label_source)}</td></tr>"
        for c in result.centroids or []
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)} · {e(result.run_id)} · cluster_pipeline</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ddd; padding: 4px 8px;
text-align: left; vertical-align: top; }} th {{ background: #f6f6f6; }} img {{ max-width: 100%; }}
figure {{ margin: 1.5rem 0; }} figcaption {{ color: #444; max-width: 60rem; }}
tr.failed td:nth-child(2) {{ color: #b00020; font-weight: 600; }} tr.passed td:nth-child(2) {{ color: #1b7f3b; }}
tr.skipped td {{ color: #666; }}
</style></head><body>
<h1>Clustering {e(title)}</h1>
{link}
<table>{summary}</table>
{checks}
{figures}
{interactive}
{_drift_section(result)}
<h2>Clusters</h2>
<table><tr><th>cluster</th><th>members</th><th>share</th><th>label</th><th>summary</th><th>keywords</th>
<th>named by</th></tr>
{clusters}</table>
</body></html>
"""


def _drift_section(result: ExecutionResult) -> str:
    """Which clusters stayed (with the previous run's id for each), which are new, which are gone."""
    drift = result.drift
    if not drift:
        return ""
    e = html.escape
    labels = {c.cluster_id: c.label for c in result.centroids or []}
    stable = "".join(
        f"<tr><td>{e(pair['cluster_id'])}</td><td>{e(labels.get(pair['cluster_id'], ''))}</td>"
        f"<td>{e(pair['previous_cluster_id'])}</td><td>{number(pair.get('centroid_distance'))}</td></tr>"
        for pair in drift.get("stable_clusters") or []
    )
    new = ", ".join(f"{c} ({labels.get(c, '')})" for c in drift.get("new_clusters") or []) or "none"
    gone = ", ".join(drift.get("gone_clusters") or []) or "none"
    return (
        f"<h2>Against the previous execution</h2><p>{e(drift_line(result) or '')} "
        f"({drift.get('shared_documents', 0):,} documents in both).</p>"
        "<table><tr><th>stable cluster</th><th>label</th><th>was</th><th>centre moved</th></tr>"
        f"{stable}</table><p>New clusters: {e(new)}. Gone clusters (previous run's ids): {e(gone)}.</p>"
    )


def build_report(lake: Lake, result: ExecutionResult, *, dagster_url: str | None = None) -> tuple[str, list[str]]:
    """The HTML report of a stored result, from its files in the lake, and a warning per missing part
    (a picture or map file deleted, a configuration gone: the report is written without it)."""
    from cluster_pipeline.core.render.cluster_map import map_html

    warnings: list[str] = []
    images: dict[str, bytes] = {}
    map_fragment = None
    for name, uri in result.artifacts.items():
        suffix = "map.parquet" if name == "map" else f"{name}.png"
        key = lake.execution_key(result.namespace, result.cluster_id, result.run_id, suffix)
        try:
            if name == "map":
                map_fragment = map_html(read_parquet(lake.storage, key), result.centroids or [])
            else:
                images[name] = lake.storage.read_bytes(key)
        except NotFoundError:
            warnings.append(f"{uri} is missing; the report is written without it")
    config = None
    try:
        config = ConfigStore(lake).get(result.namespace, result.cluster_id)
    except NotFoundError:
        warnings.append(f"configuration {result.cluster_id} is gone; the report is written without its checks")
    outcomes = evaluate_checks(result, config.checks) if config and result.status == "completed" else []
    page = html_report(
        result, images, config=config, outcomes=outcomes, map_fragment=map_fragment, dagster_url=dagster_url
    )
    return page, warnings
