"""Azure's MLTable files, read from real files through fsspec: paths (file, folder,
pattern), the three readers, the common transformations, and every unsupported or
mistaken step refused in one line with its line number."""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from lapis.data import mltable
from lapis.errors import InvalidParameterValue


def _table(folder: Path, text: str) -> mltable.MLTable:
    (folder / "MLTable").write_text(text)
    return mltable.load_table(LocalFileSystem(), str(folder))


def test_delimited_files_in_a_folder_with_transformations(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "a.csv").write_text("id,age,survived\n1,22,0\n2,38,1\n")
    (tmp_path / "parts" / "b.csv").write_text("id,age,survived\n3,,1\n4,35,1\n")
    table = _table(
        tmp_path,
        """
paths:
  - folder: ./parts
transformations:
  - read_delimited:
      delimiter: ','
      header: all_files_same_headers
      encoding: utf8
  - skip: 1
  - drop_columns: [id]
  - convert_column_types:
      - columns: [age, survived]
        column_type: int
""",
    )
    columns, rows = table.rows()
    assert columns == ["age", "survived"]
    assert rows == [{"age": 38, "survived": 1}, {"age": None, "survived": 1},
                    {"age": 35, "survived": 1}]  # fmt: skip
    assert table.rows(limit=1)[1] == [{"age": 38, "survived": 1}]
    frame = table.to_pandas_dataframe()
    assert list(frame.columns) == ["age", "survived"] and len(frame) == 3


def test_from_first_file_no_header_patterns_and_paths(tmp_path: Path) -> None:
    (tmp_path / "x1.tsv").write_text("a\tb\n1\t2\n")
    (tmp_path / "x2.tsv").write_text("3\t4\n")
    table = _table(tmp_path, "paths:\n  - pattern: ./x*.tsv\ntransformations:\n"
                   "  - read_delimited:\n      delimiter: \"\\t\"\n      header: from_first_file\n"
                   "      include_path_column: true\n  - keep_columns: [a, Path]\n")  # fmt: skip
    columns, rows = table.rows()
    assert columns == ["a", "Path"]
    assert [r["a"] for r in rows] == ["1", "3"] and rows[1]["Path"].endswith("x2.tsv")
    (tmp_path / "y.csv").write_text("5,6\n")
    plain = _table(tmp_path, "paths:\n  - file: ./y.csv\ntransformations:\n"
                   "  - read_delimited:\n      header: no_header\n")  # fmt: skip
    assert plain.rows() == (["Column1", "Column2"], [{"Column1": "5", "Column2": "6"}])


def test_json_lines_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "rows.jsonl").write_text('{"a": 1, "b": "x"}\n\n{"a": 2, "c": true}\n')
    table = _table(tmp_path, "paths:\n  - file: rows.jsonl\ntransformations:\n"
                   "  - read_json_lines:\n      encoding: utf8\n")  # fmt: skip
    assert table.rows() == (["a", "b", "c"], [{"a": 1, "b": "x"}, {"a": 2, "c": True}])
    pq.write_table(pa.table({"x": [1, 2, 3], "y": ["p", "q", "r"]}), tmp_path / "t.parquet")
    table = _table(tmp_path, "paths:\n  - file: t.parquet\ntransformations:\n"
                   "  - read_parquet\n  - take: 2\n")  # fmt: skip
    assert table.rows() == (["x", "y"], [{"x": 1, "y": "p"}, {"x": 2, "y": "q"}])
    assert mltable.load(str(tmp_path)).rows(limit=1)[1] == [{"x": 1, "y": "p"}]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("paths: []\n", "MLTable:1: 'paths' must list at least one"),
        (
            "paths:\n  - file: a.csv\ntransformations:\n  - filter: 'col(\"a\") > 1'\n",
            "MLTable:4: 'transformations.0' the filter transformation is not supported by Lapis",
        ),
        ("paths:\n  - file: a.csv\ntransformations:\n  - tak: 3\n", "did you mean 'take'"),
        ("paths:\n  - url: https://x/a.csv\n", "each path is file:, folder: or pattern:"),
        (
            "paths:\n  - file: a.csv\ntransformations:\n  - read_delimited:\n      header: yes\n",
            "header: must be one of",
        ),
        ("paths:\n  - file: a.csv\nrows: 3\n", "'rows' is not an MLTable setting"),
    ],
)
def test_mistakes_are_one_line(text: str, says: str) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        mltable.parse(text, "MLTable")
    assert says in str(caught.value), str(caught.value)


def test_paths_never_lead_out_of_the_tables_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.csv").write_text("secret\n1\n")
    (tmp_path / "t").mkdir()
    table = _table(tmp_path / "t", "paths:\n  - file: ../outside.csv\n")
    with pytest.raises(InvalidParameterValue, match="leads out of the MLTable's folder"):
        table.rows()
    (tmp_path / "t" / "link.csv").symlink_to(tmp_path / "outside.csv")  # a link out: left out
    linked = _table(tmp_path / "t", "paths:\n  - pattern: ./*.csv\n")
    assert linked.rows() == ([], [])
