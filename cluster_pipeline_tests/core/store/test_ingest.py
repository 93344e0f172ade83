"""Ingest's checks and file reading: what a batch must be, and the one-line errors when it is not."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.store import ingest
from cluster_pipeline.core.store.ingest import MAX_DOCUMENT_MB, read_documents_file


def _files(lake) -> list[str]:
    return lake.storage.list_keys("")


def test_list_columns_are_converted_to_fixed_size_float32(collections):
    table = pa.table({"document_id": ["a", "b"], "embedding": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]})
    collections.ingest("default", "c", table)
    snap = collections.snapshot("default", "c")
    assert collections.scan(snap).matrix("embedding").tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"id": ["a"], "embedding": [[1.0, 2.0]]}), "Missing column 'document_id'"),
        (pa.table({"document_id": ["a", "b"], "embedding": [[1.0, 2.0], [1.0]]}), "mixed dimensions"),
        (pa.table({"document_id": ["a", "b"], "embedding": [[1.0, float("nan")], [1.0, 2.0]]}), "NaN"),
        (pa.table({"document_id": ["a", "b"], "embedding": [[1.0, float("inf")], [1.0, 2.0]]}), "NaN or infinite"),
        (pa.table({"document_id": ["a", "a"], "embedding": [[1.0, 2.0], [1.0, 2.0]]}), "Duplicate document_id 'a'"),
        (pa.table({"document_id": ["a"], "text": ["no vectors"]}), "No embedding column"),
        (pa.table({"document_id": ["a", None], "embedding": [[1.0, 2.0], [1.0, 2.0]]}), "empty values"),
        (
            pa.table({"document_id": ["a", ""], "embedding": [[1.0, 2.0], [1.0, 2.0]]}),
            r"empty values \(first in row 1\)",
        ),
        (pa.table({"document_id": [[1], [2]], "embedding": [[1.0, 2.0], [1.0, 2.0]]}), "document_id must be text"),
    ],
)
def test_bad_batches_are_refused_and_nothing_is_written(collections, lake, table, message):
    """Nothing at all: no part, no schema, no lock, no folder (issue 26, items 7 and 8)."""
    with pytest.raises(IngestError, match=message):
        collections.ingest("default", "c", table)
    assert list(Path(lake.storage.root).rglob("*")) == []


def test_a_refused_ingest_into_an_existing_collection_leaves_it_as_it_was(collections, lake):
    collections.ingest("default", "c", pa.table({"document_id": ["a"], "embedding": [[1.0, 2.0]]}))
    before = sorted(Path(lake.storage.root).rglob("*"))
    with pytest.raises(IngestError, match="Duplicate document_id 'a'"):
        collections.ingest("default", "c", pa.table({"document_id": ["a"], "embedding": [[1.0, 2.0]]}))
    assert sorted(Path(lake.storage.root).rglob("*")) == before


def test_csv_with_json_vectors_and_jsonl(tmp_path, collections):
    csv = tmp_path / "docs.csv"
    csv.write_text('document_id,text,embedding\n1,hello,"[0.1, 0.2]"\n2,world,"[0.3, 0.4]"\n')
    collections.ingest("default", "from-csv", read_documents_file(csv))
    snap = collections.snapshot("default", "from-csv")
    assert collections.scan(snap).matrix("embedding").shape == (2, 2)
    assert list(collections.load_documents(snap)["document_id"]) == ["1", "2"]

    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"document_id": f"j{i}", "embedding": [i, i + 1.0]}) for i in range(3)))
    collections.ingest("default", "from-jsonl", read_documents_file(jsonl))
    assert collections.snapshot("default", "from-jsonl").num_documents == 3


def test_unreadable_inputs(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        read_documents_file(tmp_path / "missing.parquet")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(IngestError, match="Unsupported input format"):
        read_documents_file(tmp_path / "x.xlsx")


def test_a_title_starting_with_a_bracket_is_not_an_embedding(tmp_path, collections):
    """Issue 12, item 10: auto-detection looks at every row, and prefers real vector columns."""
    (tmp_path / "docs.csv").write_text(
        'document_id,text,embedding\na,[Update] markets rally,"[0.1, 0.2]"\nb,plain news,"[0.3, 0.1]"\n'
    )
    assert collections.ingest("default", "csv", read_documents_file(tmp_path / "docs.csv")).features == {"embedding": 2}
    (tmp_path / "docs.jsonl").write_text('{"document_id": "a", "text": "[1, 2]", "embedding": [0.1, 0.2]}\n')
    report = collections.ingest("default", "jsonl", read_documents_file(tmp_path / "docs.jsonl"))
    assert report.features == {"embedding": 2}


def test_a_malformed_embedding_names_the_row_and_the_feature_option(tmp_path, collections, lake):
    (tmp_path / "docs.csv").write_text('document_id,embedding\na,"[0.1, 0.2]"\nb,"[0.3, oops]"\n')
    with pytest.raises(IngestError, match=r"row 1 is not a JSON list of numbers.*--feature"):
        collections.ingest("default", "csv", read_documents_file(tmp_path / "docs.csv"))
    assert not lake.storage.list_keys("default/")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("latin1.jsonl", b'{"document_id": "a", "text": "caf\xe9", "embedding": [0.1, 0.2]}\n'),
        ("latin1.csv", b'document_id,text,embedding\na,caf\xe9,"[0.1, 0.2]"\n'),
    ],
)
def test_text_that_is_not_utf8_is_refused_with_the_fix(tmp_path, name, content):
    """Issue 12, item 11: no UnicodeDecodeError traceback, no binary text silently labelled 'Cluster 0'."""
    (tmp_path / name).write_bytes(content)
    with pytest.raises(IngestError, match=r"not UTF-8 text: column 'text', row 0.*iconv"):
        read_documents_file(tmp_path / name)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_document_larger_than_the_readers_block_is_read_whole(tmp_path, suffix):
    """Issue 26, item 3: pyarrow's 1 MB block no longer caps a document; the reader's block grows."""
    text = "word " * ((3 << 20) // 5)  # 3 MB in one field
    path = tmp_path / f"docs.{suffix}"
    if suffix == "jsonl":
        rows = [{"document_id": "small", "text": "hi", "embedding": [0.1, 0.2]}]
        rows.append({"document_id": "large", "text": text, "embedding": [0.3, 0.4]})
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        path.write_text(f'document_id,text,embedding\nsmall,hi,"[0.1, 0.2]"\nlarge,{text},"[0.3, 0.4]"\n')
    table = read_documents_file(path)
    assert table.column("text").to_pylist() == ["hi", text]


@pytest.mark.slow
def test_a_field_of_64_mb_is_ingested(tmp_path, collections):
    """The README's promise: a field of up to 64 MB in JSON Lines (a document up to MAX_DOCUMENT_MB)."""
    assert MAX_DOCUMENT_MB >= 64 + 1
    text = "x" * (64 << 20)
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"document_id": "a", "text": text, "embedding": [0.1, 0.2]}) + "\n")
    report = collections.ingest("default", "big", read_documents_file(path))
    assert report.num_documents == 1


def test_a_document_larger_than_the_limit_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_DOCUMENT_MB", 1)  # the limit's check, without a file of 129 MB
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"document_id": "a", "text": "x" * (3 << 20), "embedding": [0.1]}) + "\n" * 2)
    with pytest.raises(IngestError, match=r"larger than 1 MB \(one line of JSON Lines, one row of CSV\).*Parquet"):
        read_documents_file(path)


def test_a_utf16_csv_is_refused_in_one_line(tmp_path):
    """Found by the ingest property test (issue 26): a header that is not UTF-8 ended in UnicodeDecodeError."""
    path = tmp_path / "docs.csv"
    path.write_text("document_id\n", encoding="utf-16")
    with pytest.raises(IngestError, match="is not UTF-8 text: its column names") as refused:
        read_documents_file(path)
    assert "\n" not in str(refused.value)
