"""MMEB as TIGER-Lab/MMEB-eval publishes it: ``<Task>/test-*.parquet`` (VLM2Vec's columns) plus ``images.zip``."""

import io
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from suite_fixtures import PALETTE, ColourEmbedder, KeyEmbedder

from umr.eval.suites import SuiteOptions, run_suite
from umr.jsonl import FileLineError

COLOURS = ["red", "green", "blue", "yellow"]  # PALETTE[0:4], the colours ColourEmbedder reads in text


def _png_bytes(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), PALETTE[i]).save(buf, format="PNG")
    return buf.getvalue()


def write_published(root, zip_prefix=""):
    """Two tasks as on the hub: N24News-like classification (image → colour words, 2 shards) and a t2i task."""
    root.mkdir(parents=True)
    cls_rows = [{"qry_text": "<|image_1|>\nRepresent the given image for classification",
                 "qry_img_path": f"Colours/{i}.png", "tgt_text": [c] + [o for o in COLOURS if o != c],
                 "tgt_img_path": [""] * 4} for i, c in enumerate(COLOURS)]
    (root / "Colours").mkdir()
    for shard, rows in enumerate([cls_rows[:3], cls_rows[3:]]):  # two shards, read in name order
        pq.write_table(pa.Table.from_pylist(rows), root / "Colours" / f"test-0000{shard}-of-00002.parquet")
    t2i_rows = [{"qry_text": f"Find me an everyday image that matches the given caption: a {COLOURS[i]} square",
                 "qry_img_path": "", "tgt_text": ["<|image_1|>\nRepresent the given image."] * 3,
                 "tgt_img_path": [f"ColourT2I/{(i + j) % 3}.png" for j in range(3)]} for i in range(3)]
    (root / "ColourT2I").mkdir()
    pq.write_table(pa.Table.from_pylist(t2i_rows), root / "ColourT2I" / "test-00000-of-00001.parquet")
    with zipfile.ZipFile(root / "images.zip", "w") as zf:
        for i in range(4):
            zf.writestr(f"{zip_prefix}Colours/{i}.png", _png_bytes(i))
        for i in range(3):
            zf.writestr(f"{zip_prefix}ColourT2I/{i}.png", _png_bytes(i))
    return root


@pytest.mark.parametrize("prefix", ["", "eval_images/"])
def test_published_parquet_and_zip_end_to_end(tmp_path, prefix):
    root = write_published(tmp_path / "mmeb", prefix)
    result = run_suite("mmeb", ColourEmbedder(), root)
    rows = {r.name: r for r in result.rows}
    # the colour of each image is named by exactly one label / caption: every query is right
    assert rows["Colours"].metrics["P@1"] == 1.0
    assert rows["Colours"].n_queries == 4 and rows["Colours"].n_candidates == 4
    assert rows["ColourT2I"].metrics["P@1"] == 1.0 and rows["ColourT2I"].n_queries == 3
    assert rows["mean (2 tasks)"].metrics["P@1"] == 1.0
    # a model that picks the wrong image: query i's vector is the vector of its second target
    wrong = {f"ColourT2I:{i + 1}": f"ColourT2I|ColourT2I/{(i + 1) % 3}.png|Represent the given image."
             for i in range(3)}
    result = run_suite("mmeb", KeyEmbedder(wrong), root, SuiteOptions(categories=["ColourT2I"]))
    assert result.rows[0].metrics["P@1"] == 0.0


def test_the_unzipped_folder_gives_the_same_numbers(tmp_path):
    root = write_published(tmp_path / "mmeb")
    zipped = run_suite("mmeb", ColourEmbedder(), root)
    with zipfile.ZipFile(root / "images.zip") as zf:
        zf.extractall(root / "eval_images")
    (root / "images.zip").unlink()
    unzipped = run_suite("mmeb", ColourEmbedder(), root)
    assert [r.metrics for r in zipped.rows] == [r.metrics for r in unzipped.rows]
    assert [r.name for r in unzipped.rows] == ["ColourT2I", "Colours", "mean (2 tasks)"]


def test_query_ids_count_rows_across_shards(tmp_path):
    root = write_published(tmp_path / "mmeb")
    seen = []

    class Recorder(ColourEmbedder):
        def prepare(self, items):
            seen.extend(it.id for it in items)
            return list(items)

    run_suite("mmeb", Recorder(), root, SuiteOptions(categories=["Colours"]))
    assert [i for i in seen if i.startswith("Colours:")] == ["Colours:1", "Colours:2", "Colours:3", "Colours:4"]


def test_missing_image_and_missing_column_name_the_parquet_row(tmp_path):
    root = write_published(tmp_path / "mmeb")
    with zipfile.ZipFile(root / "images.zip") as zf:
        kept = {n: zf.read(n) for n in zf.namelist() if n != "ColourT2I/2.png"}
    with zipfile.ZipFile(root / "images.zip", "w") as zf:
        for n, b in kept.items():
            zf.writestr(n, b)
    with pytest.raises(FileLineError, match=r"test-00000-of-00001\.parquet:1: target 2 image: file not found; "
                                            r"looked for .*images\.zip:ColourT2I/2\.png"):
        run_suite("mmeb", ColourEmbedder(), root, SuiteOptions(categories=["ColourT2I"]))
    pq.write_table(pa.Table.from_pylist([{"query": "x", "tgt_text": ["a"]}]),
                   root / "ColourT2I" / "test-00000-of-00001.parquet")
    with pytest.raises(FileLineError, match=r"test-00000-of-00001\.parquet: no column 'qry_text'"):
        run_suite("mmeb", ColourEmbedder(), root, SuiteOptions(categories=["ColourT2I"]))
