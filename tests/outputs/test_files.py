"""Atomic writing (bundle.outputs.files): a complete new file or the old one, no temporary file left behind."""

import pytest

from bundle.outputs.files import write_json_atomic, write_text_atomic


def test_json_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    assert target.read_text().strip().startswith("{") and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})
    assert '"a": 1' in target.read_text()  # the earlier complete file survives a failed write
    assert not list(tmp_path.glob(".*.tmp"))


def test_text_replaces_the_file_whole(tmp_path):
    target = tmp_path / "t.csv"
    write_text_atomic(target, "a,b\n1,2\n")
    write_text_atomic(target, "a,b\n")
    assert target.read_text() == "a,b\n" and sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
