"""Offline cluster names: class-based TF-IDF keywords and the most central documents.

As in BERTopic, each cluster's texts are joined into one "class document" and words are weighted
by ``tf(t, c) / |c| · log(1 + A / f(t))`` (A: mean words per class, f(t): t's count over all
classes), so the keywords are the words that set a cluster apart, not the words every cluster
uses. Representative documents are the most central members, diversified by maximal marginal
relevance. With no text, low-cardinality metadata names the cluster; with neither, ``Cluster N``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_LABEL_CHARS = 60
MAX_SUMMARY_CHARS = 300
DEFAULT_TEXT_FIELDS = ("title", "text")
MAX_METADATA_CARDINALITY = 50


@dataclass(frozen=True)
class ClusterLabel:
    label: str
    summary: str
    keywords: list[str]
    representative_document_ids: list[str] = field(default_factory=list)
    source: str = "offline"
    metadata: dict[str, object] = field(default_factory=dict)


def class_tfidf_keywords(texts_by_cluster: Mapping[int, Sequence[str]], *, top_n: int = 8) -> dict[int, list[str]]:
    """The ``top_n`` most distinctive words of each cluster by class-based TF-IDF."""
    from sklearn.feature_extraction.text import CountVectorizer

    clusters = sorted(texts_by_cluster)
    documents = [" ".join(texts_by_cluster[c]) for c in clusters]
    if not any(doc.strip() for doc in documents):
        return {c: [] for c in clusters}
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b", lowercase=True)
    try:
        counts = vectorizer.fit_transform(documents).astype(np.float64)
    except ValueError:  # only stop words
        return {c: [] for c in clusters}
    words = vectorizer.get_feature_names_out()
    tf = counts.toarray()
    class_sizes = tf.sum(axis=1, keepdims=True)
    frequency = tf.sum(axis=0)
    average_words = class_sizes.mean()
    weights = (tf / np.maximum(class_sizes, 1)) * np.log1p(average_words / np.maximum(frequency, 1))
    keywords = {}
    for row, cluster in enumerate(clusters):
        order = np.lexsort((words, -weights[row]))
        keywords[cluster] = [str(words[i]) for i in order[:top_n] if tf[row, i] > 0]
    return keywords


def representative_indices(X: np.ndarray, centroid: np.ndarray, *, n: int = 10, diversity: float = 0.3) -> np.ndarray:
    """Up to ``n`` row indices of ``X``: the most central first, then by maximal marginal relevance.

    MMR trades similarity to the centroid against similarity to what was already chosen, so a cluster
    full of near-duplicates still shows different documents.
    """
    if len(X) == 0:
        return np.array([], dtype=np.int64)
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    center = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    relevance = unit @ center
    candidates = np.argsort(-relevance, kind="stable")[: max(20 * n, n)]
    chosen = [int(candidates[0])]
    pool = [int(i) for i in candidates[1:]]
    while pool and len(chosen) < n:
        similarity_to_chosen = (unit[pool] @ unit[chosen].T).max(axis=1)
        scores = (1 - diversity) * relevance[pool] - diversity * similarity_to_chosen
        best = int(np.argmax(scores))
        chosen.append(pool.pop(best))
    return np.array(chosen, dtype=np.int64)


def _text_columns(documents: pd.DataFrame, text_fields: Sequence[str] | None) -> list[str]:
    if text_fields:
        return [c for c in text_fields if c in documents.columns]
    preferred = [c for c in DEFAULT_TEXT_FIELDS if c in documents.columns]
    if preferred:
        return preferred
    prose = []
    for column in documents.columns:
        if column == "document_id" or not pd.api.types.is_string_dtype(documents[column]):
            continue
        values = documents[column].dropna().astype(str).head(200)
        if len(values) and values.str.contains(" ").mean() > 0.5:
            prose.append(column)
    return prose


def _joined_text(documents: pd.DataFrame, columns: Sequence[str], rows: np.ndarray) -> list[str]:
    """The text columns of ``rows`` joined by spaces (only the sampled rows: large collections stay fast)."""
    frame = documents.iloc[rows][list(columns)].fillna("").astype(str)
    joined = frame.iloc[:, 0]
    for column in columns[1:]:
        joined = joined + " " + frame[column]
    return joined.tolist()


def _metadata_columns(documents: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    columns = []
    for column in documents.columns:
        if column == "document_id" or column in exclude:
            continue
        series = documents[column]
        if (pd.api.types.is_string_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)) and (
            1 <= series.nunique(dropna=True) <= MAX_METADATA_CARDINALITY
        ):
            columns.append(column)
    return columns


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _join_words(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _distinct_labels(keywords: Mapping[int, list[str]]) -> dict[int, str]:
    """Top 3 keywords, title-cased; when two clusters would share a label, add the next keyword."""
    labels: dict[int, str] = {}
    depth = {c: 3 for c in keywords}
    for _ in range(8):
        labels = {c: " / ".join(w.title() for w in words[: depth[c]]) for c, words in keywords.items()}
        seen: dict[str, list[int]] = {}
        for c, label in labels.items():
            seen.setdefault(label, []).append(c)
        clashes = [cs for cs in seen.values() if len(cs) > 1]
        if not clashes:
            break
        for cs in clashes:
            for c in cs:
                depth[c] += 1
    return {c: _clip(label, MAX_LABEL_CHARS) for c, label in labels.items()}


def label_clusters_offline(
    documents: pd.DataFrame,
    labels: np.ndarray,
    X: np.ndarray,
    *,
    text_fields: Sequence[str] | None = None,
    num_keywords: int = 8,
    num_representatives: int = 10,
    max_docs_per_cluster: int = 2000,
    random_state: int = 0,
) -> dict[int, ClusterLabel]:
    """A label, a one-sentence summary and keywords for every cluster index in ``labels`` (noise skipped).

    Parameters
    ----------
    documents : one row per document in the order of ``X``; ``document_id`` and metadata columns.
    labels : (n,) cluster index per row, -1 for noise.
    X : (n, d) float32, the clustered space (for central documents).
    text_fields : text columns; default ``title``/``text`` where present, else prose-like string columns.
    max_docs_per_cluster : members sampled (seeded) for keywords, so large collections stay fast.
    """
    rng = np.random.default_rng(random_state)
    clusters = sorted(int(c) for c in np.unique(labels) if c >= 0)
    text_columns = _text_columns(documents, text_fields)
    ids = documents["document_id"].astype(str).to_numpy()
    members = {c: np.flatnonzero(labels == c) for c in clusters}
    central: dict[int, np.ndarray] = {}
    for c in clusters:
        rows = members[c]
        central[c] = rows[representative_indices(X[rows], X[rows].mean(axis=0), n=num_representatives)]

    keywords: dict[int, list[str]] = {}
    if text_columns:
        sampled = {
            c: rows if len(rows) <= max_docs_per_cluster else rng.choice(rows, max_docs_per_cluster, replace=False)
            for c, rows in members.items()
        }
        keywords = class_tfidf_keywords(
            {c: _joined_text(documents, text_columns, rows) for c, rows in sampled.items()}, top_n=num_keywords
        )
    if text_columns and any(keywords.values()):
        names = _distinct_labels({c: keywords[c] or [f"cluster {c}"] for c in clusters})
        headline_column = "title" if "title" in text_columns else text_columns[0]
        result = {}
        for c in clusters:
            example = _clip(str(documents[headline_column].iloc[central[c][0]] or ""), 80)
            about = _join_words(keywords[c][:3]) or "miscellaneous topics"
            summary = f"{len(members[c])} documents about {about}" + (f', e.g. "{example}".' if example else ".")
            result[c] = ClusterLabel(names[c], _clip(summary, MAX_SUMMARY_CHARS), keywords[c], list(ids[central[c]]))
        return result
    return _label_from_metadata(documents, clusters, members, central, ids, exclude=text_columns)


def _label_from_metadata(
    documents: pd.DataFrame,
    clusters: list[int],
    members: Mapping[int, np.ndarray],
    central: Mapping[int, np.ndarray],
    ids: np.ndarray,
    exclude: Sequence[str],
) -> dict[int, ClusterLabel]:
    columns = _metadata_columns(documents, exclude)
    result = {}
    for c in clusters:
        rows = members[c]
        if columns:
            best = None
            for column in columns:
                shares = documents[column].iloc[rows].value_counts(normalize=True)
                if len(shares) and (best is None or shares.iloc[0] > best[2]):
                    best = (column, str(shares.index[0]), float(shares.iloc[0]))
            assert best is not None
            column, value, share = best
            top_values = documents[column].iloc[rows].value_counts().index[:8]
            result[c] = ClusterLabel(
                _clip(f"{column}: {value}", MAX_LABEL_CHARS),
                _clip(f"{share:.0%} of {len(rows)} documents have {column} = {value}.", MAX_SUMMARY_CHARS),
                [str(v) for v in top_values],
                list(ids[central[c]]),
            )
        else:
            result[c] = ClusterLabel(f"Cluster {c}", f"{len(rows)} documents.", [], list(ids[central[c]]))
    return result
