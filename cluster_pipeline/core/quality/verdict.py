"""What a person should read next to the metrics: what they were computed on, and how to calibrate them.

The metrics' ``description`` keeps the seed's wording exactly (``metrics.describe_quality``); what it
cannot say goes into fields of its own (ExecutionResult ``coverage``, ``quality_note``; ``warning``
is ``core.fit.warning``'s): a silhouette over the 22 % of documents that was clustered says nothing
of the rest, and text embeddings score low on silhouette even when the clusters are the topics.
"""

from __future__ import annotations

CALIBRATION_NOTE = (
    "Text embeddings score low on silhouette even when the clusters are real topics (k-means on AG News: "
    "0.04, with V-measure 0.6 against its 4 topics): compare runs of one collection by it rather than "
    "reading the band alone."
)
UMAP_NOTE = " The metrics are measured on the embeddings, not in UMAP's coordinates, which exaggerate separation."


def percent(share: float) -> str:
    """``"78 %"``; shares below 1 % but above 0 read ``"<1 %"``."""
    return "<1 %" if 0 < share < 0.005 else f"{share * 100:.0f} %"


def coverage(
    num_points: int,
    num_noise: int,
    num_reassigned: int,
    silhouette_sample_size: int | None,
    clustered: int,
    texts_sample_size: int | None = None,
) -> str:
    """Which documents the metrics describe, e.g. "computed on 1,641 of 7,600 documents; 78 % noise":
    ``num_noise`` the algorithm left as noise, ``num_reassigned`` of them given their nearest cluster
    since, ``clustered`` in a cluster now; ``texts_sample_size`` the documents whose texts the keywords
    and the topic coherence were read from, when not all of them."""
    text = f"computed on {clustered:,} of {num_points:,} documents"
    if num_points:
        text += f"; {percent(num_noise / num_points)} noise"
    if num_reassigned:
        text += f", {num_reassigned:,} of them reassigned to their nearest cluster"
    if silhouette_sample_size is not None and silhouette_sample_size < clustered:
        text += f"; silhouette on a stratified sample of {silhouette_sample_size:,}"
    if texts_sample_size is not None and texts_sample_size < num_points:
        text += f"; keywords and topic coherence from a stratified sample of {texts_sample_size:,}"
    return text


def quality_note(silhouette: float | None, reduction_method: str) -> str | None:
    """The calibration note for a "Poor" silhouette, plus where UMAP runs are measured."""
    if silhouette is None:
        return None
    note = CALIBRATION_NOTE if silhouette < 0.5 else ""
    if reduction_method == "umap":
        note = (note + UMAP_NOTE).strip()
    return note or None
