"""Run by tests/train/test_ddp.py, once under `torchrun --nproc_per_node 2` and once as one process.

argv: MODEL_DIR OUT_FILE. Trains 2 steps on the same 8-pair global batch and, on rank 0, saves the losses and
every trainable weight to OUT_FILE.
"""

from __future__ import annotations

import sys

import torch
from PIL import Image, ImageDraw

from umr import Item
from umr.train.config import TrainConfig
from umr.train.data import Pair
from umr.train.trainer import Trainer

COLOURS = ["red", "green", "blue", "yellow"]


def image(colour: str, shape: str) -> Image.Image:
    img = Image.new("RGB", (112, 112), "white")
    draw = ImageDraw.Draw(img)
    (draw.ellipse if shape == "circle" else draw.rectangle)((24, 24, 88, 88), fill=colour)
    return img


def pairs() -> list[Pair]:
    out = []
    for i, (colour, shape) in enumerate((c, s) for s in ("circle", "square") for c in COLOURS):
        other = COLOURS[(i + 1) % len(COLOURS)]
        out.append(Pair(Item(text=f"a {colour} {shape}", id=f"q{i}"), Item(image=image(colour, shape)),
                        [Item(image=image(other, shape))]))
    return out


def main() -> None:
    torch.set_num_threads(1)
    model_dir, out_file = sys.argv[1], sys.argv[2]
    config = TrainConfig.of(model=model_dir, output_dir=out_file + ".run", batch_size=8, max_steps=2, lr=1e-3,
                         num_negatives=1, symmetric=True, learn_temperature=True, grad_clip=None, seed=0)
    trainer = Trainer(config, pairs=pairs())
    losses = [trainer.step_batch(trainer.epoch_batches(epoch)[0]) for epoch in (0, 1)]
    if trainer.dist.is_main:
        weights = {k: v.detach().clone() for k, v in trainer.named_trainable().items()}
        torch.save({"losses": losses, "tau": trainer.loss_fn.tau.item(), "weights": weights}, out_file)


if __name__ == "__main__":
    main()
