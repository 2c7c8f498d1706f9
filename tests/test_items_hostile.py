"""Hostile but fair input to Item and the JSONL reader: every problem is an ItemError / file:line error, never a
crash deep in PIL, a tokenizer or an image processor."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from umr.items import MAX_ASPECT_RATIO, MIN_IMAGE_SIDE, Item, ItemError, read_items
from umr.jsonl import FileLineError, iter_jsonl


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 3), (100, 1), (1, 100), (3, 64), (2, 500), (500, 2),
                                  (201 * 4, 4)])
def test_tiny_and_skewed_images_are_item_errors(size: tuple[int, int]) -> None:
    # image processors crash on a side of 1 (channel axis guessed wrong) and Qwen2-VL refuses aspect > 200
    with pytest.raises(ItemError, match=r"'tiny'.*image is \d+x\d+"):
        Item(image=Image.new("RGB", size), id="tiny").load_image()


@pytest.mark.parametrize("size", [(MIN_IMAGE_SIDE, MIN_IMAGE_SIDE),
                                  (MIN_IMAGE_SIDE * MAX_ASPECT_RATIO, MIN_IMAGE_SIDE)])
def test_images_at_the_limits_load(size: tuple[int, int]) -> None:
    assert Item(image=Image.new("RGB", size)).load_image().size == size


@pytest.mark.parametrize("field", ["text", "instruction"])
def test_lone_surrogates_are_rejected(field: str) -> None:
    with pytest.raises(ItemError, match=rf"'s'.*{field} is not valid Unicode.*U\+D800 at character 1"):
        Item(**{"text": "ok", field: "\ud800 x"}, id="s")


def test_valid_non_ascii_text_is_kept() -> None:
    assert Item(text="café 🚌 東京").text == "café 🚌 東京"


@pytest.mark.parametrize("obj, problem", [
    ({"id": "a", "img_path": 5}, "image path must be a string, got int"),
    ({"id": "a", "image": True}, "image path must be a string, got bool"),
    ({"id": "a", "image": ["a.png"]}, "image path must be a string, got list"),
    ({"id": {"x": 1}, "text": "t"}, "id must be a string or an integer, got dict"),
    ({"id": True, "text": "t"}, "id must be a string or an integer, got bool"),
    ({"id": "a", "text": ["t"]}, "text must be a string, got list"),
    ({"id": "a", "text": "t", "instruction": 3}, "instruction must be a string, got int"),
    ({"id": "a", "video": 7}, "video must be a path or a list of frame paths"),
    ({"id": "\udc00", "text": "t"}, "not valid Unicode"),
])
def test_wrong_json_types_name_file_and_line(tmp_path: Path, obj: dict, problem: str) -> None:
    import json

    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n' + json.dumps(obj) + "\n")
    with pytest.raises(FileLineError, match=rf"items\.jsonl:2: .*{problem}"):
        list(read_items(path))


def test_json_surrogate_escape_in_text_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "\\ud800 x"}\n')
    with pytest.raises(FileLineError, match=r"items\.jsonl:2: item 'b': text is not valid Unicode"):
        list(read_items(path))


def test_non_utf8_line_names_file_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"id": "a", "text": "fine"}\n\n{"id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(FileLineError, match=r"items\.jsonl:3: not UTF-8 \(byte 0xe9 at column 25\)"):
        list(iter_jsonl(path))


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "fine"}\n')
    assert [obj for _, obj in iter_jsonl(path)] == [{"id": "a", "text": "fine"}]


def test_directory_instead_of_jsonl(tmp_path: Path) -> None:
    with pytest.raises(FileLineError, match="is a directory; give a JSONL file"):
        list(read_items(tmp_path))


def test_nul_byte_in_image_path_is_an_item_error(tmp_path: Path) -> None:
    with pytest.raises(ItemError, match="'n'.*image file not found"):
        Item(image=str(tmp_path / "a\0b.png"), id="n").load_image()
