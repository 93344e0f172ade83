"""Markup decoded before anything reads a text: the whole column by Arrow, one string by Python."""

import pyarrow as pa

from cluster_pipeline.core.quality.texts import clean_texts, coherence_words, decode_markup

SCRAPED = [
    "IBM #39;s chips &amp; AT&amp;T quot;deal quot; costs  #36;10 million",
    "Read <b>this</b> &lt;i&gt;now&lt;/i&gt; at https://example.com/x or www.example.org",
    "a second\\team of rocketeers &#146;s &#8212; done &nbsp;",
    None,
]


def test_a_column_is_decoded_as_one_string_is():
    cleaned = clean_texts(pa.array(SCRAPED)).to_pylist()
    assert " ".join(cleaned[0].split()) == 'IBM\'s chips & AT&T "deal " costs $10 million'
    assert " ".join(cleaned[1].split()) == "Read this now at or"
    assert " ".join(cleaned[2].split()) == "a second team of rocketeers 's - done"
    assert cleaned[3] is None
    assert decode_markup(SCRAPED[0]) == 'IBM\'s chips & AT&T "deal " costs $10 million'
    assert decode_markup(SCRAPED[1]) == "Read this now at or"
    assert decode_markup(SCRAPED[2]) == "a second team of rocketeers ’s — done"


def test_coherence_words_of_a_keyword():
    assert coherence_words("Oil prices") == ["oil", "prices"]
    assert coherence_words("IBM#39;s PC") == ["ibm's", "pc"]
