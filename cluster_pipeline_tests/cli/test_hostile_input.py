"""Property tests of ingest under hostile files (issue 26): random tables written as Parquet, CSV and
JSON Lines — random types, nulls, sizes, text in any script, nesting, ids empty, repeated or of other
types, vectors of the wrong length or not numbers — either are ingested or refused in one line with
exit status 2, and a refused ingest leaves the lake byte for byte as it was."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cluster_pipeline.cli import main
from cluster_pipeline_tests.conftest import blob_documents

DIM = 4
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
cells = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=2))
whole_vectors = st.lists(st.floats(-1e6, 1e6, width=32), min_size=DIM, max_size=DIM)
vectors = st.one_of(
    whole_vectors,
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=DIM + 1),
    cells,
)
ids = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.none(), st.floats(allow_nan=True), st.booleans())
column_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)


@st.composite
def documents(draw) -> list[dict]:
    extra = draw(
        st.lists(column_names.filter(lambda n: n not in ("document_id", "embedding")), max_size=3, unique=True)
    )
    well_formed, batch, rows = draw(st.booleans()), draw(st.integers(0, 10**12)), []
    for i in range(draw(st.integers(0, 6))):
        if well_formed:  # unique ids, whole vectors, one type per column: these should go in
            row = {"document_id": f"w{batch}-{i}", "embedding": draw(whole_vectors)}
            row.update({name: draw(st.text(max_size=12)) for name in extra})
        else:
            row = {"document_id": draw(ids), "embedding": draw(vectors)}
            row.update({name: draw(cells) for name in extra if draw(st.booleans())})
        rows.append(row)
    return rows


def write(rows: list[dict], path: Path, form: str, encoding: str) -> bool:
    """``rows`` as a file of ``form``; False when that form cannot hold them (Parquet of mixed types)."""
    if form == "jsonl":
        path.write_bytes(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode(encoding, "replace")
        )
    elif form == "csv":
        names = list(dict.fromkeys(name for row in rows for name in row)) or ["document_id"]
        with open(path, "w", newline="", encoding=encoding, errors="replace") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    else:
        try:
            pq.write_table(pa.Table.from_pylist(rows), path)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            return False
    return True


def lake_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=documents(),
    form=st.sampled_from(["parquet", "csv", "jsonl"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
)
def test_any_file_is_ingested_or_refused_in_one_line_leaving_the_lake_as_it_was(tmp_path, capsys, rows, form, encoding):
    root = tmp_path / "lake"
    if not root.exists():
        pq.write_table(blob_documents(5, dim=DIM, with_text=False), tmp_path / "first.parquet")
        assert main(["ingest", "news", str(tmp_path / "first.parquet")]) == 0
    path = tmp_path / f"docs.{form}"
    if not write(rows, path, form, encoding if form != "parquet" else "utf-8"):
        return
    before = lake_bytes(root)
    capsys.readouterr()
    code = main(["ingest", "news", str(path)])
    _, err = capsys.readouterr()
    event(f"{form}: exit {code} {err.split(':')[1][:40] if code else ''}")
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert lake_bytes(root) == before


FIELDS = ["group", "document_id", "num_clusters", "status", "silhouette_score", "nope"]
conditions = st.fixed_dictionaries(
    {
        "field": st.sampled_from(FIELDS),
        "operator": st.sampled_from(["eq", "ne", "lt", "in", "contains", "is_null", "~"]),
    },
    optional={"value": st.one_of(scalars, st.lists(scalars, max_size=3))},
)
filter_trees = st.recursive(
    st.one_of(conditions, scalars),
    lambda children: st.one_of(
        st.fixed_dictionaries({"NOT": children}),
        st.dictionaries(st.sampled_from(["AND", "OR", "or"]), st.lists(children, max_size=4), min_size=1, max_size=2),
    ),
    max_leaves=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=filter_trees, levels=st.integers(0, 40))
def test_any_filter_tree_is_taken_or_refused_in_one_line_by_create_and_list(tmp_path, capsys, tree, levels):
    if not (tmp_path / "lake").exists():
        pq.write_table(blob_documents(5, dim=DIM, with_text=False), tmp_path / "first.parquet")
        assert main(["ingest", "news", str(tmp_path / "first.parquet")]) == 0
        assert main(["clusters", "create", "--collection", "news", "--name", "k"]) == 0
    for _ in range(levels):
        tree = {"NOT": tree}
    text = json.dumps(tree)
    for argv in (
        ["clusters", "create", "--collection", "news", "--filter", text],
        ["executions", "list", "k", "--filter", text],
    ):
        capsys.readouterr()
        code = main(argv)
        _, err = capsys.readouterr()
        event(f"{argv[0]}: exit {code}")
        assert code == 0 or (code == 2 and err.startswith("error: ") and err.count("\n") == 1), err
