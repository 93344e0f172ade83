"""Human-readable renderings of an ExecutionResult: a markdown summary (Dagster UI) and a
self-contained HTML report (plots inlined, text escaped) for people without the UI."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

from cluster_pipeline.core.results import METRICS_UNAVAILABLE, ExecutionResult, format_timestamp
from cluster_pipeline.core.verdict import percent


def _duration(result: ExecutionResult) -> str:
    if result.completed_at is None:
        return "-"
    return f"{(result.completed_at - result.created_at).total_seconds():.1f} s"


def _metric(result: ExecutionResult, name: str, digits: int = 3) -> str:
    value = (result.metrics or {}).get(name)
    return "-" if value is None else f"{value:.{digits}f}"


def _noise(result: ExecutionResult) -> str:
    """Noise count and share, e.g. "1,234 (16 %)", and how many were reassigned."""
    if not result.num_points:
        return f"{result.num_noise:,}"
    text = f"{result.num_noise:,} ({percent(result.num_noise / result.num_points)})"
    if result.num_noise_reassigned:
        text += f", {result.num_noise_reassigned:,} reassigned to their nearest cluster"
    return text


def _quality(result: ExecutionResult) -> str:
    if result.metrics:
        return str(result.metrics.get("description"))
    return METRICS_UNAVAILABLE if result.status == "failed" else "-"


def _reduction(result: ExecutionResult) -> str | None:
    """E.g. "UMAP to 5 dimensions (cosine, 15 neighbours; fitted on 20,000, 80,000 placed)"."""
    record = result.reduction or {}
    if record.get("method") == "umap":
        placed = f", {record['placed_documents']:,} placed" if record.get("placed_documents") else ""
        return (
            f"UMAP to {record['n_components']} dimensions (cosine, {record['n_neighbors']} neighbours; "
            f"fitted on {record['fitted_documents']:,}{placed}; {record['seconds']:.1f} s)"
        )
    if record.get("method") == "pca":
        return f"PCA to {record['n_components']} dimensions ({record['explained_variance_ratio']:.0%} of the variance)"
    return None


def _auto_k(result: ExecutionResult) -> str | None:
    record = result.auto_k
    if not record:
        return None
    return (
        f"{record['parameter']}={record['chosen']} chosen by {record['criterion']} "
        f"({record['sample_size']:,} documents), k from {record['k_min']} to {record['k_max']}"
    )


def _topic_reduction(result: ExecutionResult) -> str | None:
    record = result.topic_reduction
    if not record:
        return None
    return f"{record['found']} clusters found, merged to {record['kept']} (max_clusters={record['max_clusters']})"


def summary_rows(result: ExecutionResult) -> list[tuple[str, str]]:
    usage = result.llm_usage or {}
    optional = [
        ("reduction", _reduction(result)),
        ("automatic k", _auto_k(result)),
        ("topic reduction", _topic_reduction(result)),
    ]
    rows = [
        ("run_id", result.run_id),
        ("configuration", f"{result.cluster_id} ({result.namespace}/{result.collection}, feature {result.feature})"),
        ("algorithm", f"{result.algorithm} {result.parameters}"),
        *[(name, value) for name, value in optional if value],
        ("status", result.status),
        ("documents", f"{result.num_points:,}"),
        ("clusters", str(result.num_clusters)),
        ("noise", _noise(result)),
        ("silhouette", _metric(result, "silhouette_score")),
        ("Davies–Bouldin", _metric(result, "davies_bouldin_index")),
        ("Calinski–Harabasz", _metric(result, "calinski_harabasz_score", 1)),
        ("quality", _quality(result)),
        *[(name, value) for name, value in (("metrics", result.coverage), ("note", result.quality_note)) if value],
        *([("warning", result.warning)] if result.warning else []),
        ("created", format_timestamp(result.created_at) or "-"),
        ("duration", _duration(result)),
    ]
    if usage:
        rows.append(
            (
                "LLM",
                f"{usage.get('model')}: {usage.get('calls', 0)} calls, {usage.get('total_tokens', 0)} "
                f"tokens, {usage.get('cache_hits', 0)} cached, {usage.get('fallbacks', 0)} fallbacks",
            )
        )
    if result.drift:
        rows.append(
            (
                "vs previous",
                f"ARI {result.drift.get('adjusted_rand_index')} against {result.drift.get('previous_run_id')}",
            )
        )
    if result.error_message:
        rows.append(("error", result.error_message))
    return rows


def markdown_summary(result: ExecutionResult, images: Mapping[str, bytes] | None = None) -> str:
    """A markdown table of the execution, then the pictures inline (data URIs)."""
    lines = [f"### {result.run_id} · {result.status}", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in summary_rows(result)]
    for title, png in (images or {}).items():
        lines += ["", f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"]
    return "\n".join(lines)


def html_report(result: ExecutionResult, images: Mapping[str, bytes]) -> str:
    """One self-contained HTML page: summary, plots, clusters table."""
    e = html.escape
    summary = "".join(f"<tr><th>{e(name)}</th><td>{e(value)}</td></tr>" for name, value in summary_rows(result))
    pictures = "".join(
        f'<figure><img alt="{e(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{e(title)}</figcaption></figure>"
        for title, png in images.items()
    )
    clusters = "".join(
        f"<tr><td>{e(c.cluster_id)}</td><td>{c.num_members:,}</td><td>{e(c.label)}</td><td>{e(c.summary)}</td>"
        f"<td>{e(', '.join(c.keywords))}</td><td>{e(c.label_source)}</td></tr>"
        for c in result.centroids or []
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(result.run_id)} · cluster_pipeline</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ddd; padding: 4px 8px;
text-align: left; vertical-align: top; }} th {{ background: #f6f6f6; }} img {{ max-width: 100%; }}
figure {{ margin: 1rem 0; }}
</style></head><body>
<h1>Clustering {e(result.run_id)}</h1>
<table>{summary}</table>
{pictures}
<h2>Clusters</h2>
<table><tr><th>cluster</th><th>members</th><th>label</th><th>summary</th><th>keywords</th><th>named by</th></tr>
{clusters}</table>
</body></html>
"""
