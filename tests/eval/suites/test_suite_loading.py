"""The suites' JSON reader: one linear pass, the right line for every record, `file:line` for malformed JSON."""

import gc
import json

import pytest

from umr.eval.suites.runner import _Lines, json_records, paused_gc
from umr.jsonl import FileLineError


class CountingText(str):
    """A str that adds up how many characters `count` scans."""

    scanned = 0

    def count(self, sub, start=0, end=None):
        end = len(self) if end is None else end
        CountingText.scanned += max(0, end - start)
        return str.count(self, sub, start, end)


def test_line_numbers_scan_the_text_once():
    text = CountingText("\n".join(f'{{"record": {i}}}' for i in range(2000)))
    CountingText.scanned = 0
    lines = _Lines(text)
    offsets = [i for i, ch in enumerate(text) if ch == "{"]
    assert [lines(o) for o in offsets] == list(range(1, 2001))
    # counting from the file start for every record would scan ~ n²/2 = 34M characters
    assert CountingText.scanned <= len(text)


def test_records_of_a_one_line_file_and_of_an_indented_one(tmp_path):
    data = {"images": [{"filename": f"{i}.jpg", "sentences": [{"raw": "x"}]} for i in range(50)], "dataset": "coco"}
    flat, pretty = tmp_path / "flat.json", tmp_path / "pretty.json"
    flat.write_text(json.dumps(data))
    pretty.write_text(json.dumps(data, indent=1))
    assert json_records(flat, key="images") == [(1, r) for r in data["images"]]
    got = json_records(pretty, key="images")
    assert [r for _, r in got] == data["images"]
    lines = pretty.read_text().splitlines()
    for line, rec in got:  # each reported line holds the record's opening brace, and the next line its first field
        assert lines[line - 1].strip() == "{" and rec["filename"] in lines[line]


@pytest.mark.parametrize("text, key, message", [
    ('[1,\n2\n 3]', None, r":3: malformed JSON \(expected ',' or ']' in the array\)"),
    ('{"a": 1,\n "images": [1, 2]}\n x', "images", r":3: malformed JSON \(extra data"),
    ('{"a" 1}', "images", r":1: malformed JSON \(expected ':' after a member name\)"),
    ('{"images": 3}', "images", r":1: expected a JSON object with an array under 'images'"),
    ('{"x": [1]}', None, r":1: expected a JSON array, got dict"),
    ('[{"a": 1},\n {"a": }]', None, r":2: malformed JSON"),
])
def test_malformed_files_name_the_line(tmp_path, text, key, message):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(FileLineError, match=r"a\.json" + message):
        json_records(path, key=key)


def test_a_repeated_key_reads_the_last_array_as_json_does(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"images": [1], "images": [2,\n3]}')
    assert json_records(path, key="images") == [(1, 2), (2, 3)]


def test_paused_gc_restores_the_collector():
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError
    assert gc.isenabled()
