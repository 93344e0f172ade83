"""The CLI's tables: within the width, long cells cut with an ellipsis before any header, ids whole."""

from cluster_pipeline.cli.output import table


def test_a_table_gives_way_in_its_longest_cells_first_and_never_cuts_the_kept_ids():
    rows = [("clust_0123456789ab", "kmeans", '{"n_clusters": 4, "random_state": 42, "n_init": 10}', 1)]
    shown = table(("cluster_id", "algorithm", "parameters", "version"), rows, keep=("cluster_id",), width=60)
    lines = shown.splitlines()
    assert max(map(len, lines)) <= 60 and lines[0].split() == ["cluster_id", "algorithm", "parameters", "version"]
    cells = lines[-1].split("  ")
    assert cells[0] == "clust_0123456789ab" and "kmeans" in shown and '{"n_clusters": 4' in lines[-1]
    assert lines[-1].rstrip().endswith("1") and "…" in lines[-1]  # the parameters gave way, not the version
    narrow = table(("cluster_id", "algorithm", "parameters", "version"), rows, keep=("cluster_id",), width=40)
    assert max(map(len, narrow.splitlines())) == 40 and narrow.splitlines()[-1].startswith("clust_0123456789ab ")
