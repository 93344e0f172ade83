"""LLM replies read tolerantly, repaired where they can be, refused where they cannot."""

from __future__ import annotations

import json
import re

import pytest

from cluster_pipeline.core.labels.replies import InvalidReply, LabelReply


def test_replies_are_repaired():
    reply = LabelReply.from_text(
        'Sure:\n```json\n{"Title": "' + "Space launches " * 6 + '", "description": "About rockets.", '
        '"tags": "rocket, orbit", "reasoning": "dropped"}\n```',
        fallback_keywords=["orbit", "launch", "nasa"],
    )
    assert len(reply.label) <= 60 and reply.label.endswith("…") and reply.label.startswith("Space launches")
    assert reply.summary == "About rockets." and reply.metadata == {}
    assert reply.keywords == ["rocket", "orbit", "launch"]  # topped up to three, never padded further
    long = LabelReply.from_text(json.dumps({"label": "x", "summary": "y. " * 200, "keywords": list("abcdefghijkl")}))
    assert len(long.summary) <= 300 and long.keywords == list("abcdefghij")
    assert LabelReply.from_text('{"label": "\\"Quoted\\"", "summary": "s", "keywords": ["a", "A", "#b", "c"]}') == (
        LabelReply(label="Quoted", summary="s", keywords=["a", "b", "c"])
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "reply is empty"),
        ("PWNED", "reply is not a JSON object"),
        ("[1, 2]", "reply is not a JSON object"),
        ('{"label": "", "summary": "s", "keywords": ["a", "b", "c"]}', "label: String should have at least 1"),
        ('{"label": "l"}', "summary: Field required"),
        ('{"label": 3, "summary": "s", "keywords": ["a", "b", "c"]}', "label: Input should be a valid string"),
        ('{"label": "l", "summary": "s", "keywords": ["a"]}', "keywords: List should have at least 3 items"),
    ],
)
def test_unusable_replies_are_refused(text, problem):
    with pytest.raises(InvalidReply, match=problem):
        LabelReply.from_text(text)


def test_a_custom_schema_fills_metadata_and_is_enforced():
    schema = {
        "type": "object",
        "properties": {"audience": {"type": "string"}, "confidence": {"type": "number", "maximum": 1}},
        "required": ["audience", "label"],
    }
    base = {"label": "l", "summary": "s", "keywords": ["a", "b", "c"]}
    reply = LabelReply.from_text(json.dumps(base | {"audience": "experts", "confidence": None}), custom_schema=schema)
    assert reply.metadata == {"audience": "experts"}  # null counts as absent
    for extra, problem in [
        ({"audience": 3}, "audience: 3 is not of type 'string'"),
        ({"audience": "x", "confidence": 2}, "confidence: 2 is greater than the maximum of 1"),
        ({}, "'audience' is a required property"),
    ]:
        with pytest.raises(InvalidReply, match=problem):
            LabelReply.from_text(json.dumps(base | extra), custom_schema=schema)


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("cl_3", "is the cluster's id (cl_3), not a name"),
        ("CL-3", "is the cluster's id (cl_3), not a name"),
        ("Cluster 3", "is the cluster's id (cl_3), not a name"),
        ("Topic #3", "is the cluster's id (cl_3), not a name"),
        ("...", "has no words"),
        ("Oil prices hit a record", "copies a document instead of naming the cluster"),
        ("Crude oil prices climbed to a record high…", "copies a document instead of naming the cluster"),
    ],
)
def test_labels_that_name_nothing_are_refused(label, problem):
    documents = ["Oil prices hit a record", "Crude oil prices climbed to a record high on Monday as supply fell."]
    reply = json.dumps({"label": label, "summary": "s", "keywords": ["a", "b", "c"]})
    with pytest.raises(InvalidReply, match=re.escape(f"label: {problem}")):
        LabelReply.from_text(reply, cluster_id="cl_3", documents=documents)


@pytest.mark.parametrize("label", ["Cluster 3: oil prices", "Oil prices", "Oil prices and supply", "cl_30"])
def test_labels_that_name_the_cluster_are_kept(label):
    documents = ["Oil prices hit a record", "Crude oil prices climbed to a record high on Monday as supply fell."]
    reply = json.dumps({"label": label, "summary": "s", "keywords": ["a", "b", "c"]})
    assert LabelReply.from_text(reply, cluster_id="cl_3", documents=documents).label == label
