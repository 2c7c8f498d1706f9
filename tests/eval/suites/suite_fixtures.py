"""Tiny benchmark folders in each suite's public file format, written into a tmp dir, plus test embedders.

Every builder returns a `Fixture`: the data folder, `answers` (item id → key so that a `KeyEmbedder` ranks every
ground truth first) and `wrong` (a deliberately wrong map: every query keyed to a non-answer candidate).
Images are 32×32 PNGs of one colour each; videos are 12-frame 64×64 MPEG-4 clips of a moving coloured square.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from umr.eval.suites.runner import json_records
from umr.items import Item
from umr.models.base import Embedder

PALETTE = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 20), (20, 220, 220), (220, 20, 220),
           (250, 140, 0), (120, 60, 20), (128, 128, 128), (255, 255, 255), (90, 0, 160), (0, 100, 60)]
COLOUR_WORDS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0)}


@dataclass
class Fixture:
    root: Path
    answers: dict[str, str] = field(default_factory=dict)
    wrong: dict[str, str] = field(default_factory=dict)


def png(path: Path, colour_index: int, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = PALETTE[colour_index % len(PALETTE)]
    img = Image.new("RGB", (size, size), rgb)
    img.putpixel((colour_index % size, 0), (0, 0, 0))  # every image differs even when the colour repeats
    img.save(path)
    return path


def mp4(path: Path, rgb: tuple[int, int, int], frames: int = 12, size: int = 64) -> Path:
    """A square of colour `rgb` moving left to right over black."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for t in range(frames):
            arr = np.zeros((size, size, 3), dtype=np.uint8)
            x = int(t * (size - 24) / max(frames - 1, 1))
            arr[20:44, x:x + 24] = rgb
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


# -- builders ----------------------------------------------------------------------------------------------------
def karpathy(tmp: Path, dataset: str = "flickr30k", n_test: int = 6) -> Fixture:
    """dataset_<dataset>.json with n_test test images (+2 train), 5 captions each."""
    root, images, fx = tmp / dataset, [], Fixture(tmp / dataset)
    sub = "val2014" if dataset == "coco" else ""
    folder = root / sub if sub else root / "flickr30k-images"
    names = [f"{1000 + i}.jpg" if dataset == "flickr30k" else f"COCO_val2014_{i:012d}.jpg" for i in range(n_test + 2)]
    for i, name in enumerate(names):
        Image.open(png(folder / "tmp.png", i)).save(folder / name, format="JPEG")
        split = "test" if i < n_test else "train"
        sents = [{"raw": f"A photo number {i} with caption {j}.", "tokens": ["a", "photo"], "imgid": i,
                  "sentid": 5 * i + j} for j in range(5)]
        rec = {"filename": name, "imgid": i, "split": split, "sentences": sents, "sentids": [5 * i + j for j in
                                                                                         range(5)]}
        if sub:
            rec.update(filepath=sub, cocoid=i)
        images.append(rec)
        for j in range(5):
            fx.answers[f"{name}#{j}"] = name
            fx.wrong[f"{name}#{j}"] = names[(i + 1) % n_test]
    (folder / "tmp.png").unlink()
    _write(root / f"dataset_{dataset}.json", {"images": images, "dataset": dataset})
    return fx


def cirr(tmp: Path) -> Fixture:
    """12 dev images in two image sets of six; four queries."""
    root, fx = tmp / "cirr", Fixture(tmp / "cirr")
    names = [f"dev-{i // 6}-{i % 6}-img{i % 2}" for i in range(12)]
    split = {}
    for i, n in enumerate(names):
        png(root / "dev" / str(i // 6) / f"{n}.png", i)
        split[n] = f"./dev/{i // 6}/{n}.png"
    _write(root / "image_splits" / "split.rc2.val.json", split)
    caps = []
    for q, (ref, tgt, other) in enumerate([(0, 1, 2), (3, 5, 4), (6, 9, 7), (11, 10, 8)]):
        members = names[6 * (ref // 6):6 * (ref // 6) + 6]
        caps.append({"pairid": 100 + q, "reference": names[ref], "target_hard": names[tgt],
                     "target_soft": {names[tgt]: 1.0}, "caption": f"make it colour {tgt}",
                     "img_set": {"id": ref // 6, "members": members, "reference_rank": 0, "target_rank": 1}})
        fx.answers[f"cirr:{100 + q}"] = names[tgt]
        fx.wrong[f"cirr:{100 + q}"] = names[other]
    _write(root / "captions" / "cap.rc2.val.json", caps)
    return fx


def circo(tmp: Path) -> Fixture:
    """12 unlabeled COCO images; four queries with 1–3 ground truths each."""
    root, fx = tmp / "circo", Fixture(tmp / "circo")
    ids = [1000 + 7 * i for i in range(12)]
    info = []
    for i, ident in enumerate(ids):
        name = f"{ident:012d}.jpg"
        png(root / "COCO2017_unlabeled" / "unlabeled2017" / "x.png", i).rename(
            root / "COCO2017_unlabeled" / "unlabeled2017" / name)
        info.append({"id": ident, "file_name": name, "width": 32, "height": 32})
    _write(root / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json",
            {"info": {}, "images": info})
    anns = []
    for q, (ref, gts) in enumerate([(0, [1]), (2, [3, 4]), (5, [6, 7, 8]), (9, [10])]):
        anns.append({"id": q, "reference_img_id": ids[ref], "target_img_id": ids[gts[0]],
                     "relative_caption": f"has colour {gts[0]}", "shared_concept": "a square",
                     "gt_img_ids": [ids[g] for g in gts]})
        fx.answers[f"circo:{q}"] = f"q{q}"
        fx.answers.update({str(ids[g]): f"q{q}" for g in gts})  # every ground truth shares the query's key
        fx.wrong[f"circo:{q}"] = str(ids[11 - q])
    _write(root / "annotations" / "val.json", anns)
    return fx


def fashioniq(tmp: Path, categories: Sequence[str] = ("dress", "shirt", "toptee")) -> Fixture:
    """Twelve images and three queries per category (more than 10, so R@10 can miss)."""
    root, fx = tmp / "fashioniq", Fixture(tmp / "fashioniq")
    for c, cat in enumerate(categories):
        asins = [f"B{c}{i:08d}" for i in range(12)]
        for i, a in enumerate(asins):
            png(root / "images" / f"{a}.png", 3 * c + i)
        _write(root / "image_splits" / f"split.{cat}.val.json", asins)
        caps = [{"candidate": asins[cand], "target": asins[tgt], "captions": [f"is colour {tgt}.", "has a square"]}
                for cand, tgt in [(0, 1), (2, 3), (4, 5)]]
        for line, rec in json_records(_write(root / "captions" / f"cap.{cat}.val.json", caps)):
            fx.answers[f"{cat}:{line}"] = rec["target"]
            fx.wrong[f"{cat}:{line}"] = rec["candidate"]
    return fx


def mmeb(tmp: Path) -> Fixture:
    """Two tasks: ImageNet-1K (image → 4 labels, JSONL) and MSCOCO_t2i (caption → 3 images, JSON array)."""
    root, fx = tmp / "mmeb", Fixture(tmp / "mmeb")
    labels = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead"]
    lines = []
    for i in range(4):
        png(root / "eval_images" / "ImageNet-1K" / f"{i}.png", i)
        tgts = [labels[i]] + [labels[(i + j) % len(labels)] for j in (1, 2, 3)]
        lines.append(json.dumps({"qry_text": "<|image_1|>\nRepresent the given image for classification",
                                 "qry_img_path": f"ImageNet-1K/{i}.png", "tgt_text": tgts,
                                 "tgt_img_path": ["", "", "", ""]}))
        fx.answers[f"ImageNet-1K:{i + 1}"] = f"ImageNet-1K||{tgts[0]}"
        fx.wrong[f"ImageNet-1K:{i + 1}"] = f"ImageNet-1K||{tgts[1]}"
    (root / "ImageNet-1K.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recs, text = [], "Represent the given image."
    for i in range(3):
        imgs = [f"MSCOCO_t2i/{(i + j) % 3}.png" for j in range(3)]
        png(root / "eval_images" / "MSCOCO_t2i" / f"{i}.png", 5 + i)
        recs.append({"qry_text": f"Find me an everyday image that matches the given caption: picture {i}",
                     "qry_img_path": "", "tgt_text": ["<|image_1|>\nRepresent the given image."] * 3,
                     "tgt_img_path": imgs})
    for line, rec in json_records(_write(root / "MSCOCO_t2i.json", recs)):
        fx.answers[f"MSCOCO_t2i:{line}"] = f"MSCOCO_t2i|{rec['tgt_img_path'][0]}|{text}"
        fx.wrong[f"MSCOCO_t2i:{line}"] = f"MSCOCO_t2i|{rec['tgt_img_path'][1]}|{text}"
    return fx


VIDEO_COLOURS = [("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255)), ("yellow", (255, 255, 0))]


def msrvtt(tmp: Path) -> Fixture:
    """Four videos (a red / green / blue / yellow square moving right), one sentence each, JSFusion CSV."""
    root, fx = tmp / "msrvtt", Fixture(tmp / "msrvtt")
    rows = ["key,vid_key,video_id,sentence"]
    for i, (word, rgb) in enumerate(VIDEO_COLOURS):
        vid = f"video{7000 + i}"
        mp4(root / "videos" / "all" / f"{vid}.mp4", rgb)
        rows.append(f"ret{i},msr{7000 + i},{vid},a {word} square moves to the right")
        fx.answers[f"ret{i}"] = vid
        fx.wrong[f"ret{i}"] = f"video{7000 + (i + 1) % len(VIDEO_COLOURS)}"
    (root / "MSRVTT_JSFUSION_test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return fx


BUILDERS = {"flickr30k": karpathy, "coco": lambda tmp: karpathy(tmp, "coco", n_test=10), "cirr": cirr,
            "circo": circo, "fashioniq": fashioniq, "mmeb": mmeb, "msrvtt": msrvtt}


# -- embedders ---------------------------------------------------------------------------------------------------
def _unit(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return v / np.linalg.norm(v)


class _ListEmbedder(Embedder):
    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        return torch.tensor(np.stack([self.vector(it) for it in batch]), dtype=torch.float32)

    def vector(self, item: Item) -> np.ndarray:
        raise NotImplementedError


class KeyEmbedder(_ListEmbedder):
    """Embeds an item by `keys.get(item.id, item.id)`: items with one key get one vector (score 1), others ~0.

    With negate_queries every query vector is flipped, so each query's answers rank last.
    """

    name = "key"
    supports_video = True  # a video item is embedded by its id, like any other item

    def __init__(self, keys: dict[str, str], dim: int = 64, negate_queries: bool = False) -> None:
        self.keys, self._dim, self.negate_queries = keys, dim, negate_queries

    def encode_queries(self, items: Any, instruction: str | None = None, **kw: Any) -> np.ndarray:
        """negate_queries: the answer scores -1, below every other candidate — the worst possible ranking."""
        out = super().encode_queries(items, instruction=instruction, **kw)
        return -out if self.negate_queries else out

    @property
    def dim(self) -> int:
        return self._dim

    def vector(self, item: Item) -> np.ndarray:
        return _unit(self.keys.get(item.id, item.id), self._dim)


class ColourEmbedder(_ListEmbedder):
    """3-d colour vectors: a text's colour words, an image's mean RGB. Takes no videos (frames come one by one)."""

    name = "colour"
    supports_video = False

    @property
    def dim(self) -> int:
        return 3

    def vector(self, item: Item) -> np.ndarray:
        if item.image is not None:
            return np.asarray(item.load_image(), dtype=np.float64).reshape(-1, 3).mean(0) / 255.0 + 1e-9
        words = [COLOUR_WORDS[w] for w in (item.text or "").lower().split() if w in COLOUR_WORDS]
        return np.sum(words or [(0, 0, 0)], axis=0).astype(np.float64) + 1e-9
