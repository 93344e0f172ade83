"""Offline labels: distinctive (log-odds) keywords, MMR representatives, metadata and "Cluster N" fallbacks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cluster_pipeline.core.errors import ConfigurationError, InvalidEmbeddingsError
from cluster_pipeline.core.labels.base import ClusterLabel
from cluster_pipeline.core.labels.offline import (
    MAX_LABEL_CHARS,
    MAX_SUMMARY_CHARS,
    TermCounts,
    group_keywords,
    label_clusters_offline,
    log_odds_ranking,
    representative_indices,
    term_counts,
)
from cluster_pipeline.core.quality.texts import clean_texts

# Each topic: 6 subjects x 5 predicates = 30 short sentences. "this week" is in every topic on purpose:
# it is the most frequent content word of each cluster, yet it sets no cluster apart.
TOPICS = {
    "sports": (
        ["The striker", "Our goalkeeper", "The coach", "The referee", "The captain", "The rookie"],
        [
            "scored a late goal in the match",
            "won the championship final at the stadium",
            "trained hard before the league game",
            "celebrated the tournament victory with fans",
            "was injured during the football season",
        ],
    ),
    "finance": (
        ["The central bank", "Investors", "The hedge fund", "Wall Street traders", "The treasury", "Shareholders"],
        [
            "raised interest rates to fight inflation",
            "sold shares as the stock market fell",
            "reported quarterly earnings and profits",
            "bought government bonds for the portfolio",
            "worried about the currency and the dollar",
        ],
    ),
    "space": (
        ["NASA", "The astronaut", "The rocket", "The telescope", "The space agency", "The orbiting probe"],
        [
            "launched a satellite into orbit",
            "observed a distant galaxy and its planets",
            "docked with the space station",
            "landed a rover on the surface of Mars",
            "photographed the moon during the mission",
        ],
    ),
}


def topic_corpus() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rows, labels = [], []
    for index, (subjects, predicates) in enumerate(TOPICS.values()):
        for subject in subjects:
            for predicate in predicates:
                rows.append(f"{subject} {predicate} this week.")
                labels.append(index)
    rng = np.random.default_rng(0)
    labels_array = np.array(labels)
    X = (np.eye(3, 16)[labels_array] + 0.1 * rng.standard_normal((len(rows), 16))).astype(np.float32)
    documents = pd.DataFrame({"document_id": [f"d{i}" for i in range(len(rows))], "text": rows})
    return documents, labels_array, X


def distinctive_keywords(texts_by_cluster: dict[int, list], top_n: int = 8) -> dict[int, list[str]]:
    """The log-odds keywords of each cluster's texts (empty or None texts count no words)."""
    clusters = sorted(texts_by_cluster)
    texts = pa.array([t or None for c in clusters for t in texts_by_cluster[c]], pa.large_string())
    groups = np.repeat(np.arange(len(clusters)), [len(texts_by_cluster[c]) for c in clusters])
    terms = term_counts(clean_texts(texts), groups, len(clusters))
    rankings = log_odds_ranking(terms.counts, terms.words)
    return {
        c: [str(terms.words[w]) for w in ranking.columns[:top_n]] for c, ranking in zip(clusters, rankings, strict=True)
    }


def vocabulary(topic: str) -> set[str]:
    subjects, predicates = TOPICS[topic]
    return set(re.findall(r"[a-z]{2,}", " ".join(subjects + predicates).lower()))


def check_limits(result: dict[int, ClusterLabel]) -> None:
    for label in result.values():
        assert 0 < len(label.label) <= MAX_LABEL_CHARS
        assert 0 < len(label.summary) <= MAX_SUMMARY_CHARS
        assert len(label.keywords) <= 10
        assert label.source == "offline"
    assert len({label.label.casefold() for label in result.values()}) == len(result)


def test_topic_corpus_keywords_belong_to_their_topic_and_labels_are_distinct() -> None:
    documents, labels, X = topic_corpus()
    result = label_clusters_offline(documents, labels, X, num_keywords=8).labels
    assert sorted(result) == [0, 1, 2]
    check_limits(result)
    for index, topic in enumerate(TOPICS):
        others = set().union(*(vocabulary(t) for t in TOPICS if t != topic))
        keywords = [k.lower() for k in result[index].keywords]
        assert len(keywords) == 8
        assert set(keywords) <= vocabulary(topic) - others, (topic, keywords)
        assert "week" not in keywords
        assert result[index].label.count(" / ") in (1, 2)
        assert result[index].summary.startswith("30 documents about ")
        assert result[index].summary.endswith("”.")
        assert all(i.startswith("d") for i in result[index].representative_document_ids)
        assert len(result[index].representative_document_ids) == 10


def test_distinctive_keywords_follow_the_log_odds_formula_on_small_data() -> None:
    texts = {0: ["apple apple banana", "apple cherry"], 1: ["banana banana durian", "durian elder"], 2: ["fig"]}
    keywords = distinctive_keywords(texts, top_n=5)
    vocab = ["apple", "banana", "cherry", "durian", "elder", "fig"]
    counts = np.array([[3, 1, 1, 0, 0, 0], [0, 2, 0, 2, 1, 0], [0, 0, 0, 0, 0, 1]], dtype=float)
    prior, total = counts.sum(axis=0), counts.sum()
    for c in texts:
        inside, outside = counts[c], prior - counts[c]
        size, rest = inside.sum(), total - inside.sum()
        delta = np.log((inside + prior) / (size + total - inside - prior)) - np.log(
            (outside + prior) / (rest + total - outside - prior)
        )
        score = delta - 1.96 * np.sqrt(1 / (inside + prior) + 1 / (outside + prior))
        present = [j for j in range(len(vocab)) if counts[c, j] > 0]
        expected = sorted(present, key=lambda j: (delta[j] <= 1e-9, -score[j], vocab[j]))
        assert keywords[c] == [vocab[j] for j in expected]


def test_a_word_frequent_in_every_cluster_does_not_lead() -> None:
    # "said" is the most frequent word of both clusters, at the same rate: it sets neither apart
    texts = {
        0: ["said rocket orbit"] * 40 + ["said said launch"] * 40,
        1: ["said pasta garlic"] * 40 + ["said said oven"] * 40,
    }
    keywords = distinctive_keywords(texts, top_n=4)
    assert keywords[0][:3] == ["launch", "orbit", "rocket"] and keywords[1][:3] == ["garlic", "oven", "pasta"]
    assert keywords[0][-1] == keywords[1][-1] == "said"


def test_distinctive_keywords_single_cluster_stop_words_and_empty_texts() -> None:
    # alone, a cluster has nothing to differ from: its words rank by frequency
    assert distinctive_keywords({7: ["rockets rockets launch", "", None, "the of and"]}) == {7: ["rockets", "launch"]}
    assert distinctive_keywords({0: ["the and of"], 1: [""]}) == {0: [], 1: []}
    assert distinctive_keywords({0: ["a b 12 x1"], 1: ["ok go"]})[0] == []


def test_ag_news_sports_keywords_are_sports_words(ag_news_path: Path) -> None:
    documents = pd.read_parquet(ag_news_path)
    X = np.stack(documents.pop("embedding").to_numpy()).astype(np.float32)
    categories = sorted(documents["category"].unique())
    labels = documents["category"].map({c: i for i, c in enumerate(categories)}).to_numpy()
    result = label_clusters_offline(documents, labels, X, max_docs_per_cluster=1000).labels
    check_limits(result)
    sports = set(result[categories.index("Sports")].keywords)
    assert len(sports & {"game", "season", "team", "win", "cup", "league", "coach", "victory", "sox"}) >= 3
    business = set(result[categories.index("Business")].keywords)
    assert business & {"oil", "prices", "profit", "stocks", "shares", "percent"}
    assert all(label.summary.startswith("1,900 documents about") for label in result.values())


def test_mmr_most_central_first_and_no_exact_duplicates() -> None:
    rng = np.random.default_rng(1)
    centroid = np.zeros(8, dtype=np.float32)
    centroid[0] = 1
    center = np.array([1, 0.05, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    others = (centroid + 0.5 * rng.standard_normal((20, 8))).astype(np.float32)
    X = np.vstack([others[:5], np.repeat(center[None], 6, axis=0), others[5:]])
    chosen = representative_indices(X, centroid, n=5)
    assert chosen[0] == 5
    assert len(chosen) == 5 and len(set(chosen.tolist())) == 5
    assert not set(chosen[1:].tolist()) & set(range(5, 11))
    assert len(np.unique(X[chosen], axis=0)) == 5


def test_mmr_without_diversity_ranks_by_centrality_and_preselects_large_clusters() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5000, 16)).astype(np.float32)
    centroid = X.mean(axis=0)
    cosine = (X @ centroid) / (np.linalg.norm(X, axis=1) * np.linalg.norm(centroid))
    assert representative_indices(X, centroid, n=7, diversity=0.0).tolist() == np.argsort(-cosine)[:7].tolist()
    diverse = representative_indices(X, centroid, n=7, diversity=0.5)
    assert diverse[0] == np.argmax(cosine) and len(set(diverse.tolist())) == 7
    assert set(diverse.tolist()) <= set(np.argsort(-cosine)[:140].tolist())
    assert representative_indices(X[:3], centroid, n=10).shape == (3,)
    assert representative_indices(X[:0], centroid).shape == (0,)
    with pytest.raises(ConfigurationError):
        representative_indices(X, centroid, diversity=1.5)


def test_without_text_metadata_names_the_cluster() -> None:
    documents, labels, X = topic_corpus()
    documents = documents.drop(columns="text").assign(
        category=pd.Categorical(np.where(labels == 0, "Sports", np.where(labels == 1, "Finance", "Space"))),
        source=np.where(np.arange(len(labels)) % 10 == 0, "AP", "Reuters"),
        year=2024,
    )
    documents.loc[documents.index[:3], "category"] = "Space"
    result = label_clusters_offline(documents, labels, X).labels
    check_limits(result)
    assert result[0].label == "category: Sports"
    assert result[0].summary == "90% of 30 documents have category = Sports."
    assert result[0].keywords == ["Sports", "Space"]
    assert result[2].label == "category: Space"


def test_without_text_or_metadata_clusters_are_numbered() -> None:
    documents, labels, X = topic_corpus()
    documents = documents[["document_id"]].assign(score=np.arange(len(labels)))
    result = label_clusters_offline(documents, labels, X).labels
    assert [result[c].label for c in range(3)] == ["Cluster 0", "Cluster 1", "Cluster 2"]
    assert result[1].summary == "Cluster 1 holds 30 documents."
    assert result[1].keywords == [] and len(result[1].representative_document_ids) == 10


def test_noise_is_ignored_and_empty_texts_are_skipped() -> None:
    documents, labels, X = topic_corpus()
    noise = pd.DataFrame({"document_id": [f"n{i}" for i in range(40)], "text": ["zebra xylophone quokka"] * 40})
    documents = pd.concat([documents, noise], ignore_index=True)
    labels = np.concatenate([labels, np.full(40, -1)])
    X = np.vstack([X, np.ones((40, 16), dtype=np.float32)])
    documents.loc[documents.index[:10], "text"] = None
    documents.loc[documents.index[10:20], "text"] = ""
    result = label_clusters_offline(documents, labels, X).labels
    assert sorted(result) == [0, 1, 2]
    assert not {"zebra", "xylophone", "quokka", "none", "nan"} & {k for r in result.values() for k in r.keywords}
    assert not any(i.startswith("n") for r in result.values() for i in r.representative_document_ids)
    assert result[0].summary.startswith("30 documents about ")
    assert label_clusters_offline(documents.iloc[:0], labels[:0], X[:0]).labels == {}


def test_cluster_without_words_falls_back_alone_and_title_is_quoted() -> None:
    documents, labels, X = topic_corpus()
    documents.loc[labels == 2, "text"] = "the and of it"
    documents["title"] = [f"Headline {i}" for i in range(len(labels))]
    result = label_clusters_offline(documents, labels, X, text_fields=["text"]).labels
    assert result[2].label == "Cluster 2"
    result = label_clusters_offline(documents, labels, X).labels
    assert re.search(r"e\.g\. “Headline \d+”\.$", result[0].summary)


def test_limits_hold_with_long_words() -> None:
    long = "supercalifragilisticexpialidocious" * 2
    text = f"{long} antidisestablishmentarianism floccinaucinihilipilification {'x' * 400} "
    documents = pd.DataFrame({"document_id": [str(i) for i in range(20)], "text": [text * 3] * 20})
    labels = np.arange(20) % 2
    X = np.random.default_rng(3).standard_normal((20, 4)).astype(np.float32)
    result = label_clusters_offline(documents, labels, X).labels
    check_limits(result)
    assert result[0].label.endswith("(cluster 0)")
    assert result[0].keywords == ["antidisestablishmentarianism", "floccinaucinihilipilification"]


def test_colliding_labels_take_the_next_keyword() -> None:
    texts = [f"oil prices crude {'opec' if i < 3 else ''}" for i in range(10)]
    texts += [f"oil prices crude {'gasoline' if i < 3 else ''}" for i in range(10)]
    texts += [f"{word} {word} news" for word in ("tennis", "movies", "bread") for _ in range(10)]
    documents = pd.DataFrame({"document_id": [str(i) for i in range(50)], "text": texts})
    labels = np.repeat(np.arange(5), 10)
    X = np.random.default_rng(4).standard_normal((50, 4)).astype(np.float32)
    result = label_clusters_offline(documents, labels, X).labels
    check_limits(result)
    assert result[0].keywords[:4] == ["crude", "oil", "prices", "opec"]
    assert result[0].label == "Crude / Oil / Prices / Opec"
    assert result[1].label == "Crude / Oil / Prices / Gasoline"
    assert result[2].label == "Tennis / News"


def test_deterministic_for_a_seed_and_sampling_bounds_keywords() -> None:
    documents, labels, X = topic_corpus()
    first = label_clusters_offline(documents, labels, X, max_docs_per_cluster=5, random_state=4).labels
    again = label_clusters_offline(documents, labels, X, max_docs_per_cluster=5, random_state=4).labels
    assert first == again
    for index, topic in enumerate(TOPICS):
        assert {k.lower() for k in first[index].keywords} <= vocabulary(topic) | {"week"}


def test_mismatched_shapes_are_a_typed_error() -> None:
    documents, labels, X = topic_corpus()
    with pytest.raises(InvalidEmbeddingsError, match="must match"):
        label_clusters_offline(documents, labels[:-1], X)


def test_term_counts_are_count_vectorizers() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [
        "Rockets LAUNCH into orbit, the rocket's orbit <b>is</b> low!",
        "Café naïve résumé — ümlaut words and x1 abc123 under_score 42 a",
        None,
        "Visit https://example.com/x or www.example.org &amp; read &lt;a href='x'&gt;link&lt;/a&gt; here#39;s",
        "supercalifragilisticexpialidociousandmoreletters isfortyoneletterslongwordxxxxxxxxxxxxxxx ok",
        "",
    ]
    groups = np.array([0, 1, 1, 0, 2, 2])
    terms = term_counts(clean_texts(pa.array(texts)), groups, 3)
    counts, words = terms.counts, terms.words
    documents = [
        " ".join(_reference_clean(t) for t, g in zip(texts, groups, strict=True) if g == c and t) for c in range(3)
    ]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,40}\b")
    reference = vectorizer.fit_transform(documents).toarray()
    ours = dict(zip(words, counts.toarray().T, strict=True))
    assert set(ours) == set(vectorizer.get_feature_names_out())
    for j, word in enumerate(vectorizer.get_feature_names_out()):
        assert ours[word].tolist() == reference[:, j].tolist(), word


def _reference_clean(text: str) -> str:
    """What the labels cleaned text with before Arrow did it: unescape entities, drop markup."""
    import html

    markup = re.compile(r"<[^>]*>|&?#\d+;|&?\b(?:quot|amp|lt|gt|nbsp|apos);|https?://\S+|www\.\S+")
    return " ".join(markup.sub(" ", html.unescape(text)).replace("\\", " ").split())


def test_the_stop_words_are_scikit_learns():
    """The offline labels keep their own copy (a k-means execution imports no scikit-learn: about a
    second of start-up); it must stay the list ``CountVectorizer(stop_words="english")`` uses."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SKLEARN_STOP_WORDS

    from cluster_pipeline.core.labels.stop_words import ENGLISH_STOP_WORDS

    assert ENGLISH_STOP_WORDS == SKLEARN_STOP_WORDS


def two_clusters(texts_a: list[str], texts_b: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two clusters of the given texts; in each, the first text's vector is the cluster's centre."""
    texts = texts_a + texts_b
    labels = np.repeat([0, 1], [len(texts_a), len(texts_b)])
    rng = np.random.default_rng(5)
    X = np.eye(2, 8)[labels] + 0.2 * rng.standard_normal((len(texts), 8))
    for cluster, first in ((0, 0), (1, len(texts_a))):
        X[first] = np.eye(2, 8)[cluster]
    documents = pd.DataFrame({"document_id": [f"d{i}" for i in range(len(texts))], "title": texts})
    return documents, labels, X.astype(np.float32)


def test_words_keep_the_casing_the_texts_use_most_and_markup_is_decoded() -> None:
    computers = [f"IBM sells its PC unit #39;s chips &amp; servers to Lenovo {i}" for i in range(12)]
    oil = ["Oil prices rose as crude oil supplies fell", "Crude oil and oil futures climb"] * 6
    documents, labels, X = two_clusters(computers, oil)
    result = label_clusters_offline(documents, labels, X).labels
    assert {"IBM", "PC"} <= set(result[0].keywords) and "Ibm" not in result[0].label
    assert "oil" in result[1].keywords  # written "Oil" at sentence starts, "oil" more often
    assert "#39;" not in result[0].summary and "&amp;" not in result[0].summary
    assert "IBM sells its PC unit's chips & servers" in result[0].summary


def test_the_example_is_the_most_central_member_with_readable_text() -> None:
    sports = ["SI.com", *[f"Yankees beat the Red Sox in game {i} of the series" for i in range(10)]]
    markets = ["https://example.com/markets", *[f"Stocks rally as investors buy shares {i}" for i in range(10)]]
    documents, labels, X = two_clusters(sports, markets)
    result = label_clusters_offline(documents, labels, X).labels
    assert "SI.com" not in result[0].summary and "Yankees beat the Red Sox" in result[0].summary
    assert "example.com" not in result[1].summary and "Stocks rally" in result[1].summary
    assert "d0" not in result[0].representative_document_ids


def test_representatives_are_the_mmr_choice_among_the_members_with_readable_text() -> None:
    """Only the picks' texts are read (an unreadable pick is dropped and the choice made again): the
    same documents as choosing among the readable members alone, whatever share of them is unreadable;
    a cluster with no readable text still shows its central members."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 16)).astype(np.float32)
    labels = np.repeat([0, 1, 2], 100)
    unreadable = rng.random(300) < 0.6
    unreadable[200:] = True  # cluster 2: nothing readable
    titles = np.where(unreadable, "SI.com", [f"Readable headline number {i}" for i in range(300)])
    documents = pd.DataFrame({"document_id": [f"d{i}" for i in range(300)], "title": titles})
    result = label_clusters_offline(documents, labels, X, num_representatives=5).labels
    for cluster in (0, 1):
        rows = np.flatnonzero((labels == cluster) & ~unreadable)
        centre = X[labels == cluster].mean(axis=0)
        expected = [f"d{row}" for row in rows[representative_indices(X[rows], centre, n=5)]]
        assert result[cluster].representative_document_ids == expected
    rows = np.flatnonzero(labels == 2)
    expected = [f"d{row}" for row in rows[representative_indices(X[rows], X[rows].mean(axis=0), n=5)]]
    assert result[2].representative_document_ids == expected


def test_topic_words_are_ten_distinct_words_per_cluster_and_the_label_leads() -> None:
    documents, labels, X = topic_corpus()
    outcome = label_clusters_offline(documents, labels, X)
    words = outcome.topic_words
    assert words is not None and sorted(words) == [0, 1, 2]
    assert all(len(topic) == 10 and topic == [w.lower() for w in topic] for topic in words.values())
    assert len({w for topic in words.values() for w in topic}) == 30  # no word in two topics
    for index in range(3):
        assert [k.lower() for k in outcome.labels[index].keywords[:3]] == words[index][:3]


def test_a_merged_topic_s_keywords_are_its_ranking_s_first_words_ties_included():
    """``group_keywords`` ranks only the words that can lead: the first words of the full ranking of the
    clusters' summed counts against the rest's, in its order, when many words share a score (small
    integer counts tie often)."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    counts = sparse.csr_matrix(rng.integers(0, 3, (6, 400)).astype(np.float64) * (rng.random((6, 400)) < 0.5))
    words = np.array([f"w{i:03d}" for i in rng.permutation(400)], dtype=object)
    terms = TermCounts(counts, words, words)
    for clusters in ([0], [1, 4], [0, 2, 3, 5]):
        inside = counts[clusters].sum(axis=0)
        pair = sparse.csr_matrix(np.vstack([inside, counts.sum(axis=0) - inside]))
        ranking = log_odds_ranking(pair, words)[0]
        for top_n in (1, 5, 40, 400):
            assert group_keywords(terms, clusters, top_n) == [str(words[c]) for c in ranking.columns[:top_n]]
