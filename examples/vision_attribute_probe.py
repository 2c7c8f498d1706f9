"""Issue 31 probe: which of the world's attributes can a model's image features tell apart at all?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/vision_attribute_probe.py \
        [--model tiny:u-marvel@64x2+pre] [--out runs/judge-plateau]

A logistic-regression probe per attribute (shape, colour, size, pattern, position, background) is fitted on 3,000
images of the pretraining world (seed 1000) and scored on 1,000 images of validation world 2, from six views of
each image:
- the vision tower's output tokens, concatenated (what the LLM of an embedder or judge receives, position by
  position);
- the same tokens, averaged (what a uniform attention would read);
- the one token farthest from the image's median token (mostly the object's), alone: what the object's own
  features say, with no help from where in the sequence they sit;
- the LLM's output at the 16 image tokens, concatenated (what the embedding's pooling starts from; U-MARVEL's
  mean pooling averages them with the document prompt's 52 other tokens);
- the model's image embedding (`encode_document`, what retrieval compares);
- the pixels, downsampled to 16x16 (a reference that needs no model).

An attribute that the tokens carry and the embedding does not is one that the LLM drops; one that the tokens do not
carry is out of reach of any judge or embedder built on that tower. The attributes are read from the image file
names (`<shape>-<colour>-<size>-<pattern>-<position>-<background>_v<variant>.png`). One JSON line per view is printed
and appended to OUT/attributes.jsonl; docs/quality.md §9 has the measured table.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from judge_probe import world  # the sibling probe's worlds (run from examples/)
from PIL import Image
from sklearn.linear_model import LogisticRegression

from umr.items import Item
from umr.models.registry import load_embedder

ATTRIBUTES = ("shape", "colour", "size", "pattern", "position", "background")


def sample(root: Path, n: int, seed: int) -> list[Path]:
    files = sorted(root.glob("images/*/*/*.png"))
    random.Random(seed).shuffle(files)
    return files[:n]


def labels(files: list[Path]) -> dict[str, list[str]]:
    parts = [f.stem.split("_v")[0].split("-") for f in files]
    return {a: [p[i] for p in parts] for i, a in enumerate(ATTRIBUTES)}


def llm_image_states(embedder: Any, files: list[Path]) -> np.ndarray:
    """The LLM's last hidden states at the image tokens of each image's document prompt, [n, tokens, hidden]."""
    batch = embedder.prepare([Item(image=str(f)).with_role("document") for f in files])
    with torch.no_grad():
        hidden = embedder.backbone.hidden_states(batch)
    at = batch["input_ids"] == embedder.model.config.image_token_id
    return hidden[at].view(len(files), -1, hidden.shape[-1]).float().numpy()


def views(embedder: Any, files: list[Path], batch: int = 64) -> dict[str, np.ndarray]:
    """Every view for a Qwen2-VL-family embedder; only the image embedding for another (CLIP-SF)."""
    embedding = embedder.encode_document([Item(image=str(f)) for f in files])
    backbone = getattr(embedder, "backbone", None)
    if not hasattr(backbone, "process_images"):
        return {"image embedding": embedding}
    tokens, states, pixels = [], [], []
    for at in range(0, len(files), batch):
        images = [Image.open(f).convert("RGB") for f in files[at:at + batch]]
        inputs, _ = backbone.process_images(images)
        with torch.no_grad():
            out = backbone.model.model.visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"])
        tokens.append(out.view(len(images), -1, out.shape[-1]).float().numpy())
        states.append(llm_image_states(embedder, files[at:at + batch]))
        pixels.append(np.stack([np.asarray(im.resize((16, 16))).ravel() / 255 for im in images]))
    tok = np.concatenate(tokens)
    off = np.linalg.norm(tok - np.median(tok, 1, keepdims=True), axis=-1).argmax(1)  # the token least like the rest
    return {"vision tokens, concatenated": tok.reshape(len(files), -1), "vision tokens, averaged": tok.mean(1),
            "the most distinct token alone": tok[np.arange(len(files)), off],
            "LLM states at the image tokens, concatenated": np.concatenate(states).reshape(len(files), -1),
            "image embedding": embedding,
            "pixels 16x16": np.concatenate(pixels)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny:u-marvel@64x2+pre", help="an embedder: every view for the "
                    "Qwen2-VL family, the image embedding only for another (CLIP-SF)")
    ap.add_argument("--train", type=int, default=3000, help="images of the pretraining world the probes fit on")
    ap.add_argument("--test", type=int, default=1000, help="images of validation world 2 they are scored on")
    ap.add_argument("--out", type=Path, default=Path("runs/judge-plateau"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train, test = sample(world(args.out, 1000), args.train, 0), sample(world(args.out, 2), args.test, 1)
    embedder = load_embedder(args.model, device="cpu")
    x_train, x_test = views(embedder, train), views(embedder, test)
    y_train, y_test = labels(train), labels(test)
    majority = {a: round(100 * max(y_test[a].count(v) for v in set(y_test[a])) / len(test), 1) for a in ATTRIBUTES}
    rows = [{"model": args.model, "view": "majority class", **majority}]
    for name, x in x_train.items():
        mean, std = x.mean(0), x.std(0) + 1e-6
        fit, held = (x - mean) / std, (x_test[name] - mean) / std
        acc = {a: round(100 * LogisticRegression(max_iter=3000).fit(fit, y_train[a]).score(held, y_test[a]), 1)
               for a in ATTRIBUTES}
        rows.append({"model": args.model, "view": name, **acc})
    with (args.out / "attributes.jsonl").open("a") as fh:
        for row in rows:
            print(json.dumps(row))
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
