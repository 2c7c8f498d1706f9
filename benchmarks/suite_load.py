"""Suite loading benchmark: how long `umr eval-suite` reads a benchmark's annotation file before any embedding.

    .venv/bin/python benchmarks/suite_load.py [--sizes 20000 120000] [--coco 123287] [--info 123403]
                                              [--repeat 3] [--json out.json]

Writes Karpathy split files in the layout of ``dataset_coco.json`` (one line, ``{"images": [{"filename",
"filepath", "split", "sentences": [{"raw", "tokens", ...}], ...}]}``, five captions an image, the test split the
same share of images as real COCO: 5,000 of 123,287) into a temporary folder, with an empty file for each test
image (the loader looks every test image up on disk), and times ``umr.eval.suites.karpathy.load`` — the JSON walk,
the per-record checks and the image look-ups — best of --repeat runs.

Printed: seconds per 10k image records at each of --sizes and their ratio (largest / smallest; 1.0 = linear
growth, 6.0 = quadratic growth from 20k to 120k), the load time at the real COCO size (target < 10 s), and the
JSON walk alone over a CIRCO-sized ``image_info_unlabeled2017.json`` (--info entries).

Measured (2 CPU cores shared with three other developers' jobs, Python 3.11; two runs, the second under more load):
  20,000 images   0.57 s = 0.29 s per 10k records      |  0.96 s = 0.48 s per 10k
  120,000 images  2.82 s = 0.24 s per 10k records      |  5.84 s = 0.49 s per 10k
  per-record ratio 120k / 20k: 0.82                    |  1.01   (linear; quadratic would be 6)
  123,287 images (real COCO size): 3.94 s              |  6.48 s (target < 10 s; before: ~65 min, issue 17)
  CIRCO image info, 123,403 entries (JSON walk): 0.89 s |  1.52 s
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from umr.eval.suites.karpathy import load
from umr.eval.suites.runner import json_records

COCO_IMAGES = 123_287
COCO_TEST = 5_000
SENTENCE = "a man riding a wave on top of a surfboard near the shore with people watching"
WORDS = SENTENCE.split(" ")


def write_karpathy(folder: Path, n: int) -> Path:
    """dataset_coco.json with n images (the real file's test share in split "test"), empty test image files."""
    n_test = max(1, round(n * COCO_TEST / COCO_IMAGES))
    (folder / "val2014").mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(n):
        split = "test" if i % (n // n_test) == 0 and i // (n // n_test) < n_test else "train"
        name = f"COCO_val2014_{i:012d}.jpg"
        sents = [{"tokens": WORDS[j:j + 9], "raw": " ".join(WORDS[j:j + 9]).capitalize() + ".", "imgid": i,
                  "sentid": 5 * i + j} for j in range(5)]
        images.append({"filepath": "val2014", "sentids": [5 * i + j for j in range(5)], "filename": name,
                       "imgid": i, "split": split, "sentences": sents, "cocoid": 100000 + i})
        if split == "test":
            (folder / "val2014" / name).touch()
    path = folder / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}), encoding="utf-8")
    return path


def time_load(folder: Path, n: int, repeat: int) -> dict[str, float]:
    path = write_karpathy(folder, n)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        images, captions, _ = load(path, folder, "test")
        best = min(best, time.perf_counter() - t0)
    return {"images": n, "test_images": len(images), "captions": len(captions), "mb": path.stat().st_size / 1e6,
            "load_s": best, "s_per_10k": best / n * 1e4}


def time_info(folder: Path, n: int, repeat: int) -> float:
    """The JSON walk over a CIRCO-style image-info file (the image look-ups need the real images)."""
    path = folder / "image_info_unlabeled2017.json"
    info = [{"license": 4, "file_name": f"{i:012d}.jpg", "coco_url": f"http://images.cocodataset.org/{i}.jpg",
             "height": 480, "width": 640, "date_captured": "2013-11-14 16:28:13", "id": i} for i in range(n)]
    path.write_text(json.dumps({"info": {}, "licenses": [], "images": info}), encoding="utf-8")
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        assert len(json_records(path, key="images")) == n
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs=2, default=[20_000, 120_000], help="two file sizes (images)")
    p.add_argument("--coco", type=int, default=COCO_IMAGES, help="the real COCO size (0: skip)")
    p.add_argument("--info", type=int, default=123_403, help="CIRCO image-info entries (0: skip)")
    p.add_argument("--repeat", type=int, default=3, help="runs per size; the best is reported")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [time_load(Path(tmp) / f"k{n}", n, args.repeat) for n in args.sizes]
        for r in rows:
            print(f"{r['images']:>7,} images ({r['mb']:.0f} MB, {r['test_images']} test, {r['captions']} captions): "
                  f"{r['load_s']:.2f} s = {r['s_per_10k']:.3f} s per 10k records")
        ratio = rows[-1]["s_per_10k"] / rows[0]["s_per_10k"]
        print(f"per-record cost ratio {args.sizes[1]:,} / {args.sizes[0]:,}: {ratio:.2f} (1.0 = linear)")
        out.update(sizes=rows, ratio=ratio)
        if args.coco:
            coco = time_load(Path(tmp) / "coco", args.coco, args.repeat)
            print(f"real COCO size, {args.coco:,} images: {coco['load_s']:.2f} s (target < 10 s)")
            out["coco"] = coco
        if args.info:
            info_s = time_info(Path(tmp), args.info, args.repeat)
            print(f"CIRCO image info, {args.info:,} entries (JSON walk): {info_s:.2f} s")
            out["circo_info_s"] = info_s
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
