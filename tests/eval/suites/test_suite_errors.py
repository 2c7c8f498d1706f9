"""Malformed annotations and missing media fail with a message naming the file, the line and the record."""

import json
import re

import pytest
from suite_fixtures import BUILDERS, KeyEmbedder

from umr.eval.suites import SuiteOptions, run_suite
from umr.jsonl import FileLineError


def _fixture(suite, tmp_path):
    return BUILDERS[suite](tmp_path)


def _run(suite, fx, **opts):
    return run_suite(suite, KeyEmbedder(fx.answers), fx.root, SuiteOptions(**opts))


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=1))


def test_missing_image_names_the_record_and_where_it_looked(tmp_path):
    fx = _fixture("flickr30k", tmp_path)
    (fx.root / "flickr30k-images" / "1002.jpg").unlink()
    with pytest.raises(FileLineError) as err:
        _run("flickr30k", fx)
    msg = str(err.value)
    assert re.search(r"dataset_flickr30k\.json:\d+: image '1002\.jpg': file not found; looked for", msg)
    assert err.value.line is not None and err.value.line > 1


def test_karpathy_sentence_without_raw_text(tmp_path):
    fx = _fixture("coco", tmp_path)
    _edit_json(fx.root / "dataset_coco.json", lambda d: d["images"][3]["sentences"][2].pop("raw"))
    with pytest.raises(FileLineError, match=r"dataset_coco\.json:\d+: image 'COCO_val2014_000000000003\.jpg': "
                                            r"sentence 2 has no 'raw' text"):
        _run("coco", fx)


def test_cirr_record_missing_a_field_and_unknown_target(tmp_path):
    fx = _fixture("cirr", tmp_path)
    caps = fx.root / "captions" / "cap.rc2.val.json"
    original = caps.read_text()
    _edit_json(caps, lambda d: d[1].pop("target_hard"))
    with pytest.raises(FileLineError, match=r"cap\.rc2\.val\.json:\d+: caption record: missing field 'target_hard'"):
        _run("cirr", fx)
    caps.write_text(original)
    _edit_json(caps, lambda d: d[2].update(target_hard="dev-9-9-img9"))
    with pytest.raises(FileLineError, match=r"cap\.rc2\.val\.json:\d+: pairid 102: target_hard 'dev-9-9-img9' is not"):
        _run("cirr", fx)


def test_circo_unknown_ground_truth_and_missing_ground_truths(tmp_path):
    fx = _fixture("circo", tmp_path)
    ann = fx.root / "annotations" / "val.json"
    _edit_json(ann, lambda d: d[1]["gt_img_ids"].append(424242))
    with pytest.raises(FileLineError, match=r"val\.json:\d+: query id 1: image id 424242 is not in the image-info"):
        _run("circo", fx)
    _edit_json(ann, lambda d: (d[1]["gt_img_ids"].remove(424242), d[2].pop("gt_img_ids")))  # no ground truths
    with pytest.raises(FileLineError, match=r"val\.json:\d+: query id 2: no gt_img_ids \(hidden ground truths\? "
                                            r"the test split is written as a submission file"):
        _run("circo", fx)


def test_fashioniq_target_outside_the_split(tmp_path):
    fx = _fixture("fashioniq", tmp_path)
    _edit_json(fx.root / "captions" / "cap.shirt.val.json", lambda d: d[0].update(target="B999"))
    with pytest.raises(FileLineError, match=r"cap\.shirt\.val\.json:\d+: candidate 'B100000000' → target 'B999': "
                                            r"the target is not in split\.shirt\.val\.json"):
        _run("fashioniq", fx)


def test_mmeb_bad_line_and_missing_image(tmp_path):
    fx = _fixture("mmeb", tmp_path)
    path = fx.root / "ImageNet-1K.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ['{"qry_text": "x", "tgt_text": "not a list"}'] + lines[3:]) + "\n")
    with pytest.raises(FileLineError, match=r"ImageNet-1K\.jsonl:3: query record needs a non-empty list 'tgt_text'"):
        _run("mmeb", fx)
    path.write_text("\n".join(lines) + "\n")
    (fx.root / "eval_images" / "MSCOCO_t2i" / "1.png").unlink()
    with pytest.raises(FileLineError, match=r"MSCOCO_t2i\.json:\d+: target \d image: file not found"):
        _run("mmeb", fx)
    with pytest.raises(FileNotFoundError, match=r"no VisDial/\*\.parquet, VisDial\.jsonl or \.json"):
        _run("mmeb", fx, categories=["VisDial"])


def test_msrvtt_missing_video_bad_header_and_corrupt_clip(tmp_path):
    fx = _fixture("msrvtt", tmp_path)
    csv_path = fx.root / "MSRVTT_JSFUSION_test.csv"
    (fx.root / "videos" / "all" / "video7001.mp4").rename(fx.root / "elsewhere.mp4")
    with pytest.raises(FileLineError, match=r"MSRVTT_JSFUSION_test\.csv:3: video 'video7001': file not found"):
        _run("msrvtt", fx)
    (fx.root / "elsewhere.mp4").rename(fx.root / "videos" / "all" / "video7001.mp4")
    (fx.root / "videos" / "all" / "video7002.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=r"item 'video7002': not a readable video"):
        _run("msrvtt", fx, video_mode="mean")
    csv_path.write_text("key,video,sentence\nret0,video7000,a red square\n")
    with pytest.raises(FileLineError, match=r"MSRVTT_JSFUSION_test\.csv:1: header lacks column 'video_id'"):
        _run("msrvtt", fx)


def test_unknown_suite_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown suite 'imagenet'"):
        run_suite("imagenet", KeyEmbedder({}), tmp_path)
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        run_suite("cirr", KeyEmbedder({}), tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="dataset_flickr30k.json"):
        run_suite("flickr30k", KeyEmbedder({}), tmp_path)
