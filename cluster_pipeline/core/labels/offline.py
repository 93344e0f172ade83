"""Offline cluster names (BERTopic's keyword stage): distinctive keywords and central documents.

Needs no network and never fails for want of text: without text, low-cardinality metadata names a
cluster, and with neither a cluster is ``Cluster N``. The LLM labeler reuses the pieces here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from cluster_pipeline.core.errors import ConfigurationError, InvalidEmbeddingsError
from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.fit.merging import member_means
from cluster_pipeline.core.labels.base import ClusterLabel, LabelingOutcome
from cluster_pipeline.core.labels.options import LabelingOptions
from cluster_pipeline.core.labels.stop_words import ENGLISH_STOP_WORDS
from cluster_pipeline.core.labels.terms import TermCounts, alphabetical_ranks
from cluster_pipeline.core.quality.coherence import TOP_WORDS, WordPositions, npmi, window_presence
from cluster_pipeline.core.quality.texts import clean_texts, decode_markup

MAX_LABEL_CHARS = 60
MAX_SUMMARY_CHARS = 300
EXAMPLE_CHARS = 80
LABEL_WORDS = 3
DEFAULT_TEXT_FIELDS = ("title", "text")
MAX_METADATA_CARDINALITY = 50
PRESELECT_FACTOR = 20
# cosine similarity above which two members count as the same document for MMR
DUPLICATE_SIMILARITY = 0.99999
# Tokens are CountVectorizer's r"(?u)\b[^\W\d_]{2,40}\b": runs of word characters (letters, digits,
# "_") made of 2-40 letters only, so no numbers, ids, one-letter debris or base64-like runs. In RE2
# (Arrow's regex engine) a counted unicode class is slow; a letters-only test and a length are not.
NOT_WORD = r"[^\pL\pN_\s]"
TOKEN_LENGTH = (2, 40)
CHUNK_ROWS = 65536
MAX_DOCS_PER_CLUSTER = 2000  # members whose words are counted: a seeded sample beyond that
LOWER_BOUND_Z = 1.96  # keywords rank by the lower end of a 95 % interval of their log-odds ratio
# a word the texts write in lower case this often or more is a common word, whatever its capitals elsewhere
LOWER_CASE_SHARE = 0.25
# keywords after the label's are chosen among this many times as many distinctive words, for coherence;
# a candidate's standing in the distinctiveness ranking counts this much beside its mean NPMI
POOL_FACTOR = 3
DISTINCTIVENESS_WEIGHT = 0.5
# a site name ("SI.com") or a link is not text a person can read a cluster by
SITE_NAME = re.compile(r"\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,6}\b", re.IGNORECASE)
READABLE_WORD = re.compile(r"[^\W\d_]{2,}")


def term_counts(cleaned: pa.Array | pa.ChunkedArray, groups: np.ndarray, num_groups: int) -> TermCounts:
    """Word counts of the (n,) ``cleaned`` texts (``core.quality.texts.clean_texts``: markup decoded, links
    removed; nulls allowed) by their (n,) ``groups``: ``CountVectorizer(stop_words="english")``'s counts,
    with how the texts write each word.

    Split into tokens, lower-cased and stop words dropped by Arrow compute kernels over the whole column
    at once: no Python per document (at 100k documents ~10× faster).
    """
    split = pc.utf8_split_whitespace(pc.replace_substring_regex(cleaned, pattern=NOT_WORD, replacement=" "))
    written, parents = pc.list_flatten(split), pc.list_parent_indices(split)
    tokens = pc.utf8_lower(written)
    length = pc.utf8_length(tokens)
    keep = pc.and_(
        pc.and_(pc.utf8_is_alpha(tokens), pc.invert(pc.is_in(tokens, value_set=_stop_words()))),
        pc.and_(pc.greater_equal(length, TOKEN_LENGTH[0]), pc.less_equal(length, TOKEN_LENGTH[1])),
    )
    encoded = pc.dictionary_encode(tokens.filter(keep))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    words = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    columns = encoded.indices.to_numpy(zero_copy_only=False)
    rows = np.asarray(groups)[parents.filter(keep).to_numpy(zero_copy_only=False)]
    counts = sparse.csr_matrix(
        (np.ones(len(columns)), (rows, columns)), shape=(num_groups, len(words)), dtype=np.float64
    )
    counts.sum_duplicates()
    counts.sort_indices()
    return TermCounts(counts, words, _written_forms(written.filter(keep), columns, words))


def _written_forms(written: pa.Array | pa.ChunkedArray, columns: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Each word in the form the texts use most ("IBM", "NFL", "iPhone"), unless they write it in lower
    case at least ``LOWER_CASE_SHARE`` of the time: a common word capitalised at the start of sentences and
    in headlines stays lower case ("oil")."""
    forms = words.copy()
    cased = pc.not_equal(written, pc.utf8_lower(written)).to_numpy(zero_copy_only=False)
    if not cased.any():
        return forms
    encoded = pc.dictionary_encode(written.filter(pa.array(cased)))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    spellings = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    pairs, uses = np.unique(
        columns[cased].astype(np.int64) * len(spellings) + encoded.indices.to_numpy(zero_copy_only=False),
        return_counts=True,
    )
    word, spelling = np.divmod(pairs, len(spellings))
    best = np.lexsort((-uses, word))
    best = best[np.concatenate([[True], word[best][1:] != word[best][:-1]])]
    totals = np.bincount(columns, minlength=len(words))
    lower = totals - np.bincount(word, weights=uses, minlength=len(words))
    capitalised = word[best][lower[word[best]] < LOWER_CASE_SHARE * totals[word[best]]]
    chosen = spelling[best][lower[word[best]] < LOWER_CASE_SHARE * totals[word[best]]]
    forms[capitalised] = spellings[chosen]
    return forms


@cache
def _stop_words() -> pa.Array:
    return pa.array(sorted(ENGLISH_STOP_WORDS))


@dataclass(frozen=True)
class Ranking:
    """One row's words, most distinctive first: their columns, log-odds ``delta`` and the lower end of
    its 95 % interval (``bound``)."""

    columns: np.ndarray
    delta: np.ndarray
    bound: np.ndarray


def log_odds_ranking(
    counts: sparse.csr_matrix, words: np.ndarray, alphabetical: np.ndarray | None = None
) -> list[Ranking]:
    """Every word of each row (cluster) of ``counts``, ranked by how much it sets the row apart from the
    other rows (ties alphabetical); a single row, with nothing to differ from, ranks its words by frequency.

    A word is scored by the log-odds ratio of its use in its cluster against the others together, with
    an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin' Words"): ``delta``, and its
    standard error ``sigma``. The prior is the collection's own word counts (``alpha_w`` = the word's count
    in all clusters). Over-represented words (``delta > 0``) come first, each group ranked by the lower
    end of the estimate's 95 % interval, ``delta - 1.96 sigma``.

    Why: class-based TF-IDF (BERTopic's) ranks by frequency in the cluster, and with few clusters its
    idf barely varies, so words frequent everywhere won: AG News labels read "New / Reuters / Said"
    and "Iraq / Afp / President". A word used at about the same rate everywhere (said, new, news
    agencies) has ``delta`` near 0 whatever its count; a rare word has a wide ``sigma``; what leads is
    frequent *and* concentrated. Measured on AG News (k-means with k = 3, 4, 8, 15, 30; HDBSCAN after
    UMAP, 3 seeds, and with 64 clusters): no word in the top 3 of more than 2 clusters, none of
    said/new/reuters/ap/afp in any label. Ranking by the z-score ``delta / sigma`` named HDBSCAN's large
    mixed cluster "Said / Microsoft / Oil" (and, with a prior of 1 % of the collection, k-means' world
    cluster "Iraq / President / Afp"); ``delta`` alone picked rare names ("Dow / Inflation / Fannie").

    ``alphabetical``: the words' ``alphabetical_ranks`` when the caller has them.
    """
    alphabetical = alphabetical_ranks(words) if alphabetical is None else alphabetical
    rankings = []
    for row_scores in _log_odds(counts):
        order = _ranked(*row_scores, alphabetical)
        rankings.append(Ranking(*(values[order] for values in row_scores)))
    return rankings


def _log_odds(counts: sparse.csr_matrix) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each row's words (columns), their log-odds ratio ``delta`` and its lower bound (``log_odds_ranking``)."""
    totals = np.asarray(counts.sum(axis=0)).ravel()  # each word over all clusters: also its prior
    sizes = np.asarray(counts.sum(axis=1)).ravel()
    everything = float(sizes.sum())
    for row in range(counts.shape[0]):
        start, end = counts.indptr[row], counts.indptr[row + 1]
        columns = counts.indices[start:end]
        yield columns, *_row_log_odds(counts.data[start:end], totals[columns], sizes[row], everything)


def _row_log_odds(
    inside: np.ndarray, prior: np.ndarray, size: float, everything: float
) -> tuple[np.ndarray, np.ndarray]:
    """``delta`` and its lower bound for words used ``inside`` times in a group of ``size`` words and
    ``prior`` times in all ``everything`` words."""
    outside = prior - inside
    rest = everything - size
    # log-odds of the word in the cluster minus in the rest, each smoothed by the prior
    delta = np.log((inside + prior) / np.maximum(size + everything - inside - prior, 0.5)) - np.log(
        (outside + prior) / np.maximum(rest + everything - outside - prior, 0.5)
    )
    sigma = np.sqrt(1.0 / (inside + prior) + 1.0 / (outside + prior))
    return delta, delta - LOWER_BOUND_Z * sigma


def _ranked(
    columns: np.ndarray, delta: np.ndarray, bound: np.ndarray, alphabetical: np.ndarray, top_n: int | None = None
) -> np.ndarray:
    """Positions of one row's words in ranking order (all, or the first ``top_n``): over-represented words
    first, however rare (a small count widens sigma, not the evidence of absence elsewhere: a word used
    six times, all here, beats one used evenly everywhere), then by ``bound``, ties alphabetical."""
    under = delta <= 1e-9
    candidates = np.arange(len(columns))
    if top_n is not None and len(under) - under.sum() > top_n:  # only the best bounds lead (ties at the cut kept)
        cut = np.partition(bound[~under], -top_n)[-top_n]
        candidates = np.flatnonzero(~under & (bound >= cut))
    order = np.lexsort((alphabetical[columns[candidates]], -bound[candidates], under[candidates]))
    return candidates[order][:top_n]


def topic_keywords(
    terms: TermCounts, cleaned: pa.Array | pa.ChunkedArray, groups: np.ndarray, top_n: int = TOP_WORDS
) -> list[list[str]]:
    """The ``top_n`` keywords of each group (cluster) of ``terms``, lower case: distinctive and, beyond the
    label's, coherent. ``cleaned`` are the texts ``terms`` counted (``clean_texts``), in their ``groups``.

    The first ``LABEL_WORDS`` are the most distinctive (``log_odds_ranking``): what sets the cluster
    apart. The others come from the cluster's own distinctive words, those no other cluster ranks higher
    (so no two clusters share them) and whose log-odds ratio is above 0 at 95 % (a word used everywhere
    co-occurs with everything: it must not come in by coherence), the ``POOL_FACTOR · top_n`` best; then
    the ranking's next words when they run out. They are added one at a time, each the candidate
    with the highest mean NPMI (``core.quality.coherence``, 10-token windows of the cluster's texts) with
    the words chosen so far, plus ``DISTINCTIVENESS_WEIGHT`` times its standing in the ranking (1 for the
    best candidate, falling to 0). On AG News (k-means, k=4) this raised the mean c_npmi of the top 10
    from -0.08 to 0.12 with every word still distinct: words that are distinctive but rare seldom
    share a window ("Sudan", "Arafat") and gave way to words that do ("troops", "killed").
    """
    rankings = log_odds_ranking(terms.counts, terms.words, terms.alphabetical)
    owner = _owners(rankings, len(terms.words))
    chosen, pools = [], []
    for row, ranking in enumerate(rankings):
        lead = ranking.columns[:LABEL_WORDS]
        own = ranking.columns[(ranking.bound > 0) & (owner[ranking.columns] == row) & ~np.isin(ranking.columns, lead)]
        chosen.append(list(lead))
        pools.append(own[: POOL_FACTOR * top_n])
    vocabulary = np.unique(np.concatenate([np.asarray(c, np.int64) for c in chosen + pools] + [np.zeros(0, np.int64)]))
    if len(vocabulary) and any(len(pool) for pool in pools):
        local = {int(column): i for i, column in enumerate(vocabulary)}
        positions = WordPositions.of(cleaned, [str(w) for w in terms.words[vocabulary]])
        presence, text_of_window = window_presence(positions, len(vocabulary))
        group_of_window = np.asarray(groups)[text_of_window]
        for row, pool in enumerate(pools):
            rows = np.flatnonzero(group_of_window == row)
            candidates = [local[int(c)] for c in pool]
            picked = _coherent(presence[rows], [local[int(c)] for c in chosen[row]], candidates, top_n)
            chosen[row] += [vocabulary[i] for i in picked]
    for row, ranking in enumerate(rankings):  # too few distinctive words: the ranking's next ones
        missing = top_n - len(chosen[row])
        if missing > 0:
            chosen[row] += list(ranking.columns[~np.isin(ranking.columns, chosen[row])][:missing])
    return [[str(terms.words[c]) for c in row[:top_n]] for row in chosen]


def _owners(rankings: Sequence[Ranking], num_words: int) -> np.ndarray:
    """For each word, the row that ranks it highest (largest lower bound; -1 when none over-represents it)."""
    rows = np.concatenate([np.full(len(r.columns), i) for i, r in enumerate(rankings)] + [np.zeros(0, np.int64)])
    columns = np.concatenate([r.columns for r in rankings] + [np.zeros(0, np.int64)])
    bounds = np.concatenate([r.bound for r in rankings] + [np.zeros(0)])
    over = np.concatenate([r.delta > 1e-9 for r in rankings] + [np.zeros(0, bool)])
    rows, columns, bounds = rows[over], columns[over], bounds[over]
    owner = np.full(num_words, -1)
    order = np.lexsort((-bounds, columns))
    first = order[np.concatenate([[True], columns[order][1:] != columns[order][:-1]])] if len(order) else order
    owner[columns[first]] = rows[first]
    return owner


def _coherent(presence: sparse.csr_matrix, chosen: list[int], candidates: list[int], top_n: int) -> list[int]:
    """Candidates (columns of the cluster's window ``presence``, best-ranked first) added to ``chosen`` one
    at a time by mean NPMI with the chosen words plus their weighted standing, until ``top_n`` words."""
    if not candidates or len(chosen) >= top_n:
        return []
    columns = list(dict.fromkeys(chosen + candidates))
    local = presence[:, columns]
    occurrences = np.asarray(local.sum(axis=0)).ravel()
    together = (local.T @ local).toarray()
    pairs = npmi(together, occurrences[:, None], occurrences[None, :], max(local.shape[0], 1))
    position = {column: i for i, column in enumerate(columns)}
    standing = {c: DISTINCTIVENESS_WEIGHT * (1 - rank / len(candidates)) for rank, c in enumerate(candidates)}
    picked: list[int] = []
    taken = [position[c] for c in chosen]
    remaining = list(candidates)
    while remaining and len(chosen) + len(picked) < top_n:
        scores = [(pairs[position[c], taken].mean() if taken else 0.0) + standing[c] for c in remaining]
        best = remaining.pop(int(np.argmax(scores)))
        picked.append(best)
        taken.append(position[best])
    return picked


def representative_indices(X: np.ndarray, centroid: np.ndarray, *, n: int = 10, diversity: float = 0.3) -> np.ndarray:
    """Up to ``n`` (int64) indices of ``X``, the (m, d) members of one cluster around its (d,)
    ``centroid``: the most central member first, then by maximal marginal relevance.

    MMR scores a candidate by ``(1 - diversity) · cos(x, centroid) - diversity · max cos(x, chosen)``, so a
    cluster full of near-duplicates still shows different documents; exact duplicates of a chosen member
    are never picked. Only the ``20 · n`` most central members (one matrix product) enter the MMR loop.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ConfigurationError(f"diversity must be between 0 and 1, got {diversity}")
    if len(X) == 0 or n <= 0:
        return np.array([], dtype=np.int64)
    norms = np.maximum(np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64)), 1e-12)
    relevance = (X @ np.asarray(centroid, dtype=X.dtype)).astype(np.float64)
    relevance /= norms * max(float(np.linalg.norm(centroid)), 1e-12)
    pool = np.arange(len(X))
    if len(X) > PRESELECT_FACTOR * n:
        pool = np.argpartition(-relevance, PRESELECT_FACTOR * n - 1)[: PRESELECT_FACTOR * n]
    pool = pool[np.lexsort((pool, -relevance[pool]))]
    unit = X[pool].astype(np.float64) / norms[pool, None]
    scores_base = (1.0 - diversity) * relevance[pool]
    closest = unit @ unit[0]
    available = closest < DUPLICATE_SIMILARITY
    chosen = [0]
    while len(chosen) < n and available.any():
        scores = np.where(available, scores_base - diversity * closest, -np.inf)
        best = int(np.argmax(scores))
        chosen.append(best)
        similarity = unit @ unit[best]
        closest = np.maximum(closest, similarity)
        available &= similarity < DUPLICATE_SIMILARITY
    return pool[chosen].astype(np.int64)


def text_columns(documents: pd.DataFrame, text_fields: Sequence[str] | None) -> list[str]:
    """The columns to read text from: ``text_fields`` that exist, else title/text, else prose-like strings."""
    if text_fields:
        return [c for c in text_fields if c in documents.columns]
    preferred = [c for c in DEFAULT_TEXT_FIELDS if c in documents.columns]
    if preferred:
        return preferred
    prose = []
    for column in documents.columns:
        series = documents[column]
        if column != "document_id" and series.dtype != "category" and pd.api.types.is_string_dtype(series):
            # category-like values ("New York", "Sci/Tech") are short; prose has several words
            words = [len(v.split()) for v in series.dropna().head(200) if isinstance(v, str)]
            if words and np.median(words) >= 4:
                prose.append(column)
    return prose


def label_clusters_offline(
    documents: pd.DataFrame,
    labels: np.ndarray,
    X: np.ndarray,
    *,
    text_fields: Sequence[str] | None = None,
    num_keywords: int = 8,
    num_representatives: int = 10,
    max_docs_per_cluster: int = MAX_DOCS_PER_CLUSTER,
    random_state: int = 0,
    centroids: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
) -> LabelingOutcome:
    """A distinct label, a one-sentence summary and keywords for every cluster of the (n,) ``labels``
    (negative: noise, unlabeled), without an LLM, and each cluster's top-10 topic words; ``documents``
    and the (n, d) float32 ``X`` are in their order.

    Keywords come from a seeded sample of at most ``max_docs_per_cluster`` members per cluster, so large
    collections stay fast. ``centroids`` and ``distances``, the fit's (K, d) member means in ``X``'s
    space and each row's Euclidean distance to its own, spare a pass over ``X`` when the caller has them.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if X.ndim != 2 or not len(documents) == len(labels) == len(X):
        raise InvalidEmbeddingsError(
            f"Cannot label clusters: {len(documents)} documents, {len(labels)} labels and {len(X)} embedding rows "
            "must match; pass the matrix that was clustered."
        )
    order = np.argsort(labels, kind="stable")
    found, starts = np.unique(labels[order], return_index=True)
    members = {int(c): rows for c, rows in zip(found, np.split(order, starts)[1:], strict=True) if c >= 0}
    ids = (documents["document_id"] if "document_id" in documents else documents.index.to_series()).astype(str)
    columns = text_columns(documents, text_fields)
    fields = _text_fields(documents, columns)
    central = _representatives(X, labels, members, num_representatives, centroids, distances, fields)
    sample = _member_sample(documents, members, columns, max_docs_per_cluster, random_state)
    words: dict[int, list[str]] = {}
    written: dict[int, list[str]] = {}
    terms = None
    if sample is not None:
        terms = term_counts(sample.texts, sample.groups, len(members))
        ranked = topic_keywords(terms, sample.texts, sample.groups, max(num_keywords, TOP_WORDS))
        words = {c: topic for c, topic in zip(members, ranked, strict=True) if topic}
        written = {c: terms.written(topic[:num_keywords]) for c, topic in words.items()}
    metadata = _metadata_columns(documents, exclude=columns)
    result = {}
    for c, rows in members.items():
        representatives = central[c]
        ids_c = ids.iloc[representatives].tolist()
        size = len(rows) if sizes is None else int(sizes[c])
        if written.get(c):
            result[c] = _text_label(size, written[c], _example(fields, representatives), ids_c)
        else:
            fallback = ClusterLabel(f"Cluster {c}", f"Cluster {c} holds {_documents(size)}.", [], ids_c)
            result[c] = _metadata_label(documents, rows, metadata, num_keywords, ids_c, size) or fallback
    return LabelingOutcome(
        labels=_distinct(result, written), topic_words={c: w[:TOP_WORDS] for c, w in words.items()}, word_counts=terms
    )


@dataclass(frozen=True)
class MemberSample:
    """The texts of each cluster's (seeded sample of) members, markup decoded, cluster after cluster;
    ``groups`` gives each text's cluster position (0.. in the order the clusters were given)."""

    texts: pa.Array | pa.ChunkedArray
    groups: np.ndarray


def _member_sample(
    documents: pd.DataFrame,
    members: Mapping[int, np.ndarray],
    columns: Sequence[str],
    max_docs_per_cluster: int = MAX_DOCS_PER_CLUSTER,
    random_state: int = 0,
) -> MemberSample | None:
    """The cleaned texts of at most ``max_docs_per_cluster`` members of each cluster (a seeded sample
    beyond); None without text columns or clusters."""
    if not columns or not members:
        return None
    sampled = []
    for c, rows in members.items():
        rng = np.random.default_rng([random_state, c])
        sampled.append(rows if len(rows) <= max_docs_per_cluster else rng.choice(rows, max_docs_per_cluster, False))
    groups = np.repeat(np.arange(len(sampled)), [len(r) for r in sampled])
    return MemberSample(clean_texts(_joined_texts(documents, np.concatenate(sampled), columns)), groups)


def cluster_term_counts(
    documents: pd.DataFrame, labels: np.ndarray, num_clusters: int, *, text_fields: Sequence[str] | None = None
) -> TermCounts | None:
    """Word counts of clusters 0..K-1 (the same seeded member samples as the offline labels); None when
    the documents have no text."""
    members = {c: np.flatnonzero(np.asarray(labels) == c) for c in range(num_clusters)}
    sample = _member_sample(documents, members, text_columns(documents, text_fields))
    return None if sample is None else term_counts(sample.texts, sample.groups, num_clusters)


def group_keywords(terms: TermCounts, clusters: Sequence[int], top_n: int = 8) -> list[str]:
    """The ``top_n`` keywords of ``clusters`` taken together, against every other cluster (the first of
    ``log_odds_ranking`` of their summed counts and the rest's, only the words that can lead ranked), as
    the texts write them: how a merged topic is named."""
    inside = np.asarray(terms.counts[list(clusters)].sum(axis=0)).ravel()
    columns = np.flatnonzero(inside)
    delta, bound = _row_log_odds(inside[columns], terms.totals[columns], inside.sum(), terms.totals.sum())
    best = columns[_ranked(columns, delta, bound, terms.alphabetical, top_n)]
    return terms.written([str(word) for word in terms.words[best]])


def keywords_label(keywords: Sequence[str]) -> str:
    """A label from keywords, as offline labels are made ("Gaza / Baghdad / Iraq")."""
    return _render(_label_words(keywords, LABEL_WORDS))


def _representatives(
    X: np.ndarray,
    labels: np.ndarray,
    members: Mapping[int, np.ndarray],
    n: int,
    centroids: np.ndarray | None,
    distances: np.ndarray | None,
    fields: Sequence[np.ndarray],
) -> dict[int, np.ndarray]:
    """Representative rows per cluster; centroids and centrality come chunk by chunk, never a copy of X.

    Centrality is ``x·c / |x|`` (the cosine to the cluster's centre, up to the centre's norm, which
    ranks alike within a cluster); with the distances ``d`` to the centres, ``x·c = (|x|² + |c|² − d²) / 2``.
    Among the most central members, those without readable text in any of the text ``fields`` (a bare
    link or site name; ``_text_fields``) are passed over, unless no member has any.
    """
    if not members:
        return {}
    centroids = np.asarray(member_means(X, labels) if centroids is None else centroids, dtype=X.dtype)
    relevance = np.zeros(len(X))
    centre_norms = np.einsum("ij,ij->i", centroids, centroids, dtype=np.float64)
    for start in range(0, len(X), CHUNK_ROWS):
        block, block_labels = X[start : start + CHUNK_ROWS], labels[start : start + CHUNK_ROWS]
        squared = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        member = block_labels >= 0
        if distances is None:
            dots = np.einsum("ij,ij->i", block[member], centroids[block_labels[member]], dtype=np.float64)
        else:
            gaps = np.asarray(distances[start : start + CHUNK_ROWS][member], dtype=np.float64)
            dots = (squared[member] + centre_norms[block_labels[member]] - gaps**2) / 2.0
        relevance[start : start + len(block)][member] = dots / np.maximum(np.sqrt(squared[member]), 1e-12)
    central = {}
    for c, rows in members.items():
        if len(rows) > PRESELECT_FACTOR * n:
            rows = np.sort(rows[np.argpartition(-relevance[rows], PRESELECT_FACTOR * n - 1)[: PRESELECT_FACTOR * n]])
        central[c] = _readable_representatives(X, rows, centroids[c], n, fields)
    return central


def _readable_representatives(
    X: np.ndarray, rows: np.ndarray, centroid: np.ndarray, n: int, fields: Sequence[np.ndarray]
) -> np.ndarray:
    """``representative_indices`` among the ``rows`` with readable text (all ``rows`` when none has any).

    Only the picks are read: a pick without readable text is dropped from the candidates and the choice
    made again. That is the choice among the readable rows, since a candidate never picked changes no
    pick of maximal marginal relevance; it reads ~n texts a cluster instead of all ``20 · n``.
    """
    candidates = rows if fields else rows[:0]
    while len(candidates):
        picked = candidates[representative_indices(X[candidates], centroid, n=n)]
        unreadable = [row for row in picked if _readable_text(fields, row) is None]
        if not unreadable:
            return picked
        candidates = candidates[~np.isin(candidates, unreadable)]
    return rows[representative_indices(X[rows], centroid, n=n)]


def document_texts(documents: pd.DataFrame, text_fields: Sequence[str] | None = None) -> pa.Array | None:
    """Each document's text fields joined (``text_columns``), markup decoded: what keywords and topic
    measures read; None when the documents have no text."""
    columns = text_columns(documents, text_fields)
    return clean_texts(_joined_texts(documents, np.arange(len(documents)), columns)) if columns else None


def _joined_texts(documents: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pa.Array:
    """One string per row: its text fields joined by spaces; None/NaN/non-string fields are skipped."""
    parts = []
    for column in dict.fromkeys(columns):
        values = documents[column].to_numpy()[rows]
        try:
            parts.append(pa.array(values, pa.large_string(), from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep the non-empty strings only
            parts.append(pa.array([v if isinstance(v, str) and v else None for v in values], pa.large_string()))
    return pc.binary_join_element_wise(*parts, pa.scalar(" ", pa.large_string()), null_handling="skip")


def _readable_text(fields: Sequence[np.ndarray], row: int) -> str | None:
    """A document's first non-empty text field (``fields``: the text columns, title first), markup decoded,
    when a person can read it: a word besides links and site names. None for a document that opens with a
    bare site name ("SI.com") or link, or has no text."""
    for values in fields:
        value = values[row]
        text = decode_markup(value) if isinstance(value, str) else ""
        if text:
            return text if READABLE_WORD.search(SITE_NAME.sub(" ", text)) else None
    return None


def _text_fields(documents: pd.DataFrame, columns: Sequence[str]) -> list[np.ndarray]:
    """The text ``columns`` as arrays, title first: what ``_readable_text`` reads (converted once, since
    an Arrow-backed column costs a copy of all its strings each time)."""
    return [documents[column].to_numpy() for column in sorted(columns, key=lambda c: c != "title")]


def _example(fields: Sequence[np.ndarray], rows: np.ndarray) -> str:
    """The readable text of the most central document that has one (``_readable_text``)."""
    return next((text for row in rows if (text := _readable_text(fields, row))), "")


def _metadata_columns(documents: pd.DataFrame, exclude: Sequence[str]) -> dict[str, pd.Series]:
    """String/category/bool columns with a few repeated values (they can name a cluster): their value shares."""
    limit = min(MAX_METADATA_CARDINALITY, max(2, len(documents) // 2))
    columns = {}
    for column in documents.columns:
        series = documents[column]
        categorical = isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series)
        if column == "document_id" or column in exclude or not (categorical or pd.api.types.is_string_dtype(series)):
            continue
        if 1 <= series.nunique(dropna=True) <= limit:
            columns[column] = series.value_counts(normalize=True, dropna=False)
    return columns


def _metadata_label(
    documents: pd.DataFrame,
    rows: np.ndarray,
    columns: Mapping[str, pd.Series],
    num_keywords: int,
    ids: list[str],
    size: int,
) -> ClusterLabel | None:
    """Names a cluster by the metadata value most over-represented in it (ties: the larger share)."""
    candidates = []
    for column, overall_shares in columns.items():
        counts = documents[column].iloc[rows].value_counts(dropna=True)
        counts = counts[counts > 0]
        if not counts.empty:
            share = float(counts.iloc[0] / len(rows))
            candidates.append((share - float(overall_shares.get(counts.index[0], 0.0)), share, column, counts))
    if not candidates:
        return None
    _, share, column, counts = max(candidates, key=lambda candidate: candidate[:2])
    value = str(counts.index[0])
    return ClusterLabel(
        _clip(f"{column}: {value}", MAX_LABEL_CHARS),
        _clip(f"{share:.0%} of {_documents(size)} have {column} = {value}.", MAX_SUMMARY_CHARS),
        [str(v) for v in counts.index[:num_keywords]],
        ids,
    )


def _text_label(size: int, keywords: list[str], example: str, ids: list[str]) -> ClusterLabel:
    words = _label_words(keywords, LABEL_WORDS)
    top = keywords[:LABEL_WORDS]
    about = top[0] if len(top) == 1 else ", ".join(top[:-1]) + " and " + top[-1]
    opening = f"{_documents(size)} about {about}"
    budget = min(EXAMPLE_CHARS, MAX_SUMMARY_CHARS - len(opening) - len(", e.g. “”."))
    example = _clip(example, budget).rstrip(" .")
    summary = f"{opening}, e.g. “{example}”." if example and budget >= 20 else f"{opening}."
    return ClusterLabel(_render(words), _clip(summary, MAX_SUMMARY_CHARS), keywords, ids)


def _label_words(keywords: Sequence[str], count: int) -> list[str]:
    """The first ``count`` keywords, skipping plural/singular echoes of one already taken."""
    words: list[str] = []
    for word in keywords:
        if len(words) < count and word.lower().rstrip("s") not in {w.lower().rstrip("s") for w in words}:
            words.append(word)
    return words


def _render(words: Sequence[str]) -> str:
    """Words joined by " / ", each capitalised unless written with capitals of its own ("IBM", "iPhone"),
    dropping words before clipping to the label limit."""
    parts = [w if w != w.lower() else w[:1].upper() + w[1:] for w in words]
    while len(" / ".join(parts)) > MAX_LABEL_CHARS and len(parts) > 1:
        # a keyword added to break a tie is the one that must stay
        del parts[-2 if len(parts) > LABEL_WORDS else -1]
    return _clip(" / ".join(parts), MAX_LABEL_CHARS)


def _distinct(labels: dict[int, ClusterLabel], keywords: Mapping[int, list[str]]) -> dict[int, ClusterLabel]:
    """Colliding labels take their next keyword; any still equal get their cluster number appended."""
    depth = dict.fromkeys(labels, LABEL_WORDS)
    for _ in range(max((len(k) for k in keywords.values()), default=0)):
        grown = [c for c in _clashes(labels) if keywords.get(c) and depth[c] < len(keywords[c])]
        if not grown:
            break
        for c in grown:
            depth[c] += 1
            labels[c] = replace(labels[c], label=_render(_label_words(keywords[c], depth[c])))
    for c in _clashes(labels):
        suffix = f" (cluster {c})"
        labels[c] = replace(labels[c], label=_clip(labels[c].label, MAX_LABEL_CHARS - len(suffix)) + suffix)
    return labels


def _clashes(labels: Mapping[int, ClusterLabel]) -> list[int]:
    counts = Counter(label.label.casefold() for label in labels.values())
    return sorted(c for c, label in labels.items() if counts[label.label.casefold()] > 1)


def _documents(count: int) -> str:
    return f"{count:,} document" + ("" if count == 1 else "s")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class OfflineLabeler:
    """Distinctive, coherent keywords and central documents; needs nothing but the documents."""

    def label(
        self, documents: pd.DataFrame, fitted: FittedClustering, space: np.ndarray, options: LabelingOptions
    ) -> LabelingOutcome:
        return label_clusters_offline(
            documents,
            fitted.labels,
            space,
            text_fields=options.text_fields,
            num_keywords=options.num_keywords,
            num_representatives=options.representative_documents,
            centroids=fitted.centroids,
            distances=fitted.distances,
            sizes=fitted.cluster_sizes,
        )
