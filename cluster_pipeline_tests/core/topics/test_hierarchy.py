"""The topic tree over an execution's clusters and its cuts into coarser topics."""

import numpy as np
import pandas as pd

from cluster_pipeline.core.topics.hierarchy import ROOT_LABEL, Topic, build_hierarchy, cut


def four_topics():
    """Four clusters in two families: (0, 1) around one direction, (2, 3) around another."""
    centroids = np.array([[1.0, 0.1, 0, 0], [1.0, -0.1, 0, 0], [0, 0, 1.0, 0.1], [0, 0, 1.0, -0.1]], np.float32)
    words = {0: "rocket orbit", 1: "rocket launch", 2: "pasta garlic", 3: "pasta oven"}
    labels = np.repeat(np.arange(4), 25)
    documents = pd.DataFrame(
        {"document_id": [f"d{i}" for i in range(100)], "text": [f"{words[c]} item" for c in labels]}
    )
    return centroids, np.full(4, 25), labels, documents


def test_close_clusters_merge_first_and_merges_are_named_by_their_documents():
    centroids, sizes, labels, documents = four_topics()
    tree = build_hierarchy(centroids, sizes, ["a", "b", "c", "d"], documents, labels)
    first, second, root = tree["nodes"]
    assert {tuple(first["children"]), tuple(second["children"])} == {("cl_0", "cl_1"), ("cl_2", "cl_3")}
    assert first["distance"] < root["distance"] and root["num_members"] == 100
    rockets = next(n for n in tree["nodes"] if n["clusters"] == ["cl_0", "cl_1"])
    assert rockets["keywords"][0] == "rocket" and rockets["label"].startswith("Rocket")
    assert root["label"] == ROOT_LABEL and root["clusters"] == ["cl_0", "cl_1", "cl_2", "cl_3"]


def test_a_cut_gives_coarser_topics_with_merged_labels():
    centroids, sizes, labels, documents = four_topics()
    tree = build_hierarchy(centroids, sizes, ["a", "b", "c", "d"], documents, labels)
    leaves = [Topic(f"cl_{i}", name, [], [f"cl_{i}"], 25) for i, name in enumerate("abcd")]
    two = cut(tree, leaves, 2)
    assert sorted(t.clusters for t in two) == [["cl_0", "cl_1"], ["cl_2", "cl_3"]]
    assert {t.label.split(" / ")[0] for t in two} == {"Rocket", "Pasta"} and all(t.num_members == 50 for t in two)
    assert [t.id for t in cut(tree, leaves, 4)] == ["cl_0", "cl_1", "cl_2", "cl_3"]
    assert [t.label for t in cut(tree, leaves, 1)] == [ROOT_LABEL]


def test_without_text_a_merge_is_named_by_its_children_and_one_cluster_has_no_tree():
    centroids, sizes, _, _ = four_topics()
    tree = build_hierarchy(centroids, sizes, ["Rockets", "Launches", "Pasta", "Ovens"])
    assert {n["label"] for n in tree["nodes"][:2]} == {"Rockets + Launches", "Pasta + Ovens"}
    assert build_hierarchy(centroids[:1], sizes[:1], ["only"]) is None
