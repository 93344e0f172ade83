"""Topic coherence and diversity against gensim's own CoherenceModel (the reference the field uses)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from gensim.corpora import Dictionary
from gensim.models import CoherenceModel

from cluster_pipeline.core.quality.coherence import topic_diversity, topic_quality
from cluster_pipeline.core.quality.texts import coherence_tokens

VOCABULARY = [f"w{i}x" for i in range(30)]


def random_corpus(seed: int, documents: int = 60) -> list[str]:
    """Short texts over a small vocabulary: frequent words repeat inside a window (gensim's accumulator
    treats that case in its own way), lengths from 0 to 40 tokens (some shorter than a window)."""
    rng = np.random.default_rng(seed)
    weights = np.r_[np.full(10, 0.06), np.full(20, 0.02)]
    return [" ".join(rng.choice(VOCABULARY, rng.integers(0, 40), p=weights)) for _ in range(documents)]


def gensim_npmi(texts: list[str], topics: list[list[str]], window: int) -> list[float]:
    tokens = [re.findall(r"[a-z][a-z0-9']+", text.lower()) for text in texts]
    model = CoherenceModel(
        topics=topics,
        texts=tokens,
        dictionary=Dictionary(tokens),
        coherence="c_npmi",
        window_size=window,
        topn=10,
        processes=1,
    )
    return model.get_coherence_per_topic()


TOPICS = [["w0x", "w1x", "w2x", "w3x", "w12x"], ["w5x", "w6x", "w20x", "w21x"], ["w7x", "w8x", "w9x", "w0x", "w29x"]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", [10, 3, 1_000])
def test_npmi_equals_gensims_c_npmi(seed, window):
    texts = random_corpus(seed)
    ours = topic_quality(pa.array(texts), TOPICS, window=window)
    reference = gensim_npmi(texts, TOPICS, window)
    assert ours.per_topic == pytest.approx(reference, abs=1e-6)
    assert ours.npmi == pytest.approx(np.mean(reference), abs=1e-6)


def test_the_document_level_variant_is_one_window_per_document():
    texts = random_corpus(3)
    longest = max(len(text.split()) for text in texts)
    ours = topic_quality(pa.array(texts), TOPICS)
    assert ours.npmi_document == pytest.approx(np.mean(gensim_npmi(texts, TOPICS, longest)), abs=1e-6)


def test_real_sentences_with_casing_and_apostrophes_match_gensim():
    texts = [
        "Oil prices rose as crude supplies fell; OPEC's output was cut.",
        "Stocks fell on Wall Street as oil prices climbed to a record.",
        "The Red Sox won the World Series, the team's first title since 1918.",
        "Yankees and Red Sox meet again in the playoffs; the series is tied.",
        "Crude oil futures: prices of crude rose 2% and stocks of gasoline fell.",
        "",
        "Microsoft released Windows XP SP2 to PC users; IBM sold its PC unit.",
    ] * 3
    topics = [["oil", "prices", "crude", "stocks", "fell"], ["sox", "red", "series", "team's", "yankees"]]
    for window in (10, 4):
        ours = topic_quality(pa.array(texts), topics, window=window)
        assert ours.per_topic == pytest.approx(gensim_npmi(texts, topics, window), abs=1e-6)


def test_a_word_the_texts_never_use_scores_minus_one_with_each_other_word():
    texts = pa.array(["alpha beta", "alpha beta gamma", "gamma delta"])
    quality = topic_quality(texts, [["alpha", "beta"], ["alpha", "zulu"]])
    assert quality.per_topic[1] == -1.0 and quality.per_topic[0] > 0


def test_a_topic_of_one_word_has_no_coherence_and_the_mean_skips_it():
    quality = topic_quality(pa.array(["alpha beta", "beta gamma"]), [["alpha"], ["alpha", "beta"]])
    assert np.isnan(quality.per_topic[0]) and quality.npmi == quality.per_topic[1]


def test_topic_diversity_is_the_share_of_distinct_top_words():
    assert topic_diversity([["a", "b"], ["c", "d"]]) == 1.0
    assert topic_diversity([["a", "b", "c"], ["a", "b", "d"]]) == pytest.approx(4 / 6)
    assert topic_diversity([[f"w{i}" for i in range(12)], ["w0"]], top_n=10) == pytest.approx(10 / 11)
    assert topic_diversity([[], []]) is None


def test_above_the_sample_size_a_seeded_sample_is_read():
    texts = pa.array(random_corpus(4, documents=300))
    first = topic_quality(texts, TOPICS, sample_above=100)
    assert first.documents == 100 and first == topic_quality(texts, TOPICS, sample_above=100)
    assert first.per_topic != topic_quality(texts, TOPICS).per_topic


def test_tokens_are_the_reference_regex_on_lower_case_text():
    texts = ["Don't STOP: x1 9lives 'quoted' a1b2 --- it's", None, "", "éclair café naïve 2024 B2B"]
    tokens, parents = coherence_tokens(pa.array(texts))
    expected = [(i, t) for i, text in enumerate(texts) for t in re.findall(r"[a-z][a-z0-9']+", (text or "").lower())]
    assert list(zip(parents.tolist(), tokens.to_pylist(), strict=True)) == expected


def test_texts_the_execution_cleaned_already_are_measured_as_raw_texts_are():
    """The execution hands over its cleaned texts (``cleaned=True``): the measures are those of the raw texts."""
    from cluster_pipeline.core.quality.texts import clean_texts

    texts = pa.array([f"<b>{text}</b> &amp; w0x#39;s w1x&quot; http://x.io/w2x" for text in random_corpus(4)])
    assert topic_quality(clean_texts(texts), TOPICS, cleaned=True) == topic_quality(texts, TOPICS)
