"""Helpers of the synthesis tests: an image folder with captions, a controllable embedder, a tiny causal LM."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from umr.items import Item
from umr.models.base import Embedder
from umr.synthesis.rule import RuleGenerator

COLOURS = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (235, 210, 40), (140, 60, 180), (245, 140, 30)]
PLACES = ["Varn", "Ostrel", "Tarsk", "Quenby", "Jorvik", "Lorwen"]


def image_folder(root: Path, n: int = 6) -> Path:
    """img_0.png … with caption sidecars naming a place, a year and a material; one image has no caption."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (28, 28), COLOURS[i % len(COLOURS)]).save(root / f"img_{i}.png")
        (root / f"img_{i}.txt").write_text(f"The Item{'abcdefgh'[i]} was found in {PLACES[i % len(PLACES)]} in "
                                           f"{1800 + i} and is made of glass.\n")
    Image.new("RGB", (28, 28), (0, 0, 0)).save(root / "zz_no_caption.png")
    return root


def source_index(item: Item) -> int:
    """img_<k>.png → k for image queries; otherwise the k of the year named in the text (1800 + k)."""
    if item.image is not None and "img_" in str(item.image) and item.instruction is not None:
        return int(Path(str(item.image)).stem.split("_")[1])
    found = re.search(r"\b18(\d\d)\b", item.text or "")
    return int(found.group(1)) if found else 0  # a text query without a year: any fixed row will do


class RoutedEmbedder(Embedder):
    """One-hot vectors whose rankings the test controls: query k points at candidate route(k)."""

    name = "routed"

    def __init__(self, n: int, route: Callable[[int], int]) -> None:
        self.n, self.route = n, route

    @property
    def dim(self) -> int:
        return self.n

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        rows = []
        for it in batch:
            k = source_index(it)
            row = np.eye(self.n, dtype=np.float32)[k]
            if it.instruction is not None and self.route(k) != k:  # a query (it carries the kind's instruction)
                row = row * 0.5 + np.eye(self.n, dtype=np.float32)[self.route(k)]  # its positive ranks 2nd
            rows.append(row)
        return torch.from_numpy(np.stack(rows))


class CountingGenerator(RuleGenerator):
    """The rule generator, counting requests; `fail_after` raises once that many were served (a crash)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def generate(self, requests: list) -> list[str | None]:
        if self.fail_after is not None and self.calls + len(requests) > self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls += len(requests)
        return super().generate(requests)


def tiny_causal_lm(out: Path) -> Path:
    """A random 2-layer Qwen2 causal LM with umr's offline BPE tokenizer, saved as an HF folder."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2TokenizerFast

    from umr.models.tiny import QWEN_SPECIAL, train_bpe

    tok = Qwen2TokenizerFast(tokenizer_object=train_bpe(QWEN_SPECIAL, max_merges=200), eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", unk_token=None, bos_token=None,
                             additional_special_tokens=QWEN_SPECIAL[1:])
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out
