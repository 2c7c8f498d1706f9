"""CLIP score fusion (CLIP-SF), UniIR's baseline, on transformers' `CLIPModel`.

Each part of an item is embedded by its own CLIP tower and L2-normalised; the item's vector is the sum of
its parts' unit vectors (`Embedder.embed` normalises the sum):

    text        → text tower             e_t
    image       → image tower            e_i
    text+image  → e_t + e_i
    video       → mean of its frames' unit image vectors, renormalised, used as the visual part

The instruction follows UniIR: it is prepended to the query text as "{instruction} {text}", so an
image-only query with an instruction becomes a text+image query, exactly as in UniIR's instructed CLIP-SF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from umr.items import Item
from umr.models.base import Embedder, resolve_device, resolve_dtype
from umr.models.fingerprint import weights_fingerprint
from umr.models.recipe import PLAIN_SETTINGS, Recipe, get_recipe, write_marker

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"


class ClipScoreFusionEmbedder(Embedder):
    """UniIR CLIP-SF: sum of unit text and unit image CLIP embeddings. Loads a hub id or a local folder."""

    name = "clip-sf"
    parallel_prepare = True  # image loading and the processor dominate prepare

    def __init__(self, model_dir_or_id: str | Path = DEFAULT_CLIP_MODEL, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, max_frames: int = 8, recipe: Recipe | None = None) -> None:
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        self.recipe = recipe or get_recipe("clip-sf")  # its template builds the text (UniIR: "{instruction} {text}")

        self.model_name = str(model_dir_or_id)
        self._device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self._device)
        self.max_frames = max_frames
        self.model = CLIPModel.from_pretrained(self.model_name, dtype=self.dtype).to(self._device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        # The slow (PIL) processor: the fast one needs torchvision, which must not be installed here.
        self.image_processor = CLIPImageProcessor.from_pretrained(self.model_name)
        self.max_length = min(int(self.model.config.text_config.max_position_embeddings),
                              int(self.tokenizer.model_max_length))
        vision = self.model.config.vision_config
        self._image_tokens = (vision.image_size // vision.patch_size) ** 2 + 1

    # -- the Embedder contract -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    @property
    def device(self) -> torch.device:
        return self._device

    def text_of(self, item: Item) -> str | None:
        """The text CLIP reads for this item (the recipe's template: "{instruction} {text}"), or None when none."""
        return self.recipe.plain_text(item.instruction, item.text) or None

    def cost(self, item: Item) -> int:
        text = self.text_of(item)
        tokens = min(len(text) // 4 + 2, self.max_length) if text else 0
        visual = self._image_tokens if item.image is not None else 0
        if item.video is not None:
            visual += self._image_tokens * self.max_frames
        return tokens + visual + 1

    def prepare(self, items: Sequence[Item]) -> dict[str, Any]:
        return self.to_device(self.prepare_host(items))

    def prepare_host(self, items: Sequence[Item]) -> dict[str, Any]:
        """Tokenised texts of the items that have text, pixels of every image/frame, and who owns each row.

        Keys: input_ids/attention_mask [n_text, L] with text_index [n_text]; pixel_values [n_img, 3, H, W]
        with image_index [n_img] (several rows per video item); size = len(items).
        """
        texts, text_index, images, image_index = [], [], [], []
        for i, item in enumerate(items):
            text = self.text_of(item)
            if text is not None:
                texts.append(text)
                text_index.append(i)
            if item.image is not None:
                images.append(item.load_image())
                image_index.append(i)
            if item.video is not None:
                frames = item.load_frames(max_frames=self.max_frames)
                images.extend(frames)
                image_index.extend([i] * len(frames))
        batch: dict[str, Any] = {"size": len(items)}
        if texts:
            enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            batch["input_ids"] = enc["input_ids"]
            batch["attention_mask"] = enc["attention_mask"]
            batch["text_index"] = torch.tensor(text_index, dtype=torch.long)
        if images:
            pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
            batch["pixel_values"] = pixels.to(self.dtype)
            batch["image_index"] = torch.tensor(image_index, dtype=torch.long)
        return batch

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Sum of the unit text and unit visual embeddings per item, [size, dim] float32 (not renormalised)."""
        size = int(batch["size"])
        out = torch.zeros(size, self.dim, device=self._device, dtype=torch.float32)
        if "input_ids" in batch:
            text = self.model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            out = out.index_add(0, batch["text_index"], F.normalize(text.float(), dim=-1))
        if "pixel_values" in batch:
            image = F.normalize(self.model.get_image_features(pixel_values=batch["pixel_values"]).float(), dim=-1)
            owners = batch["image_index"]
            # Several frames of one video average into one visual vector; a single image is left as it is.
            visual = torch.zeros(size, self.dim, device=self._device, dtype=torch.float32).index_add(0, owners, image)
            has_visual = torch.zeros(size, dtype=torch.bool, device=self._device)
            has_visual[owners] = True
            visual = torch.where(has_visual[:, None], F.normalize(visual, dim=-1), visual)
            out = out + visual
        return out

    # -- training and saving --------------------------------------------------------------------------------
    def parameters(self) -> Any:
        return self.model.parameters()

    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        """The whole CLIPModel: UniIR fine-tunes both towers."""
        return {"model": self.model}

    def train(self, mode: bool = True) -> ClipScoreFusionEmbedder:
        self.model.train(mode)
        return self

    def eval(self) -> ClipScoreFusionEmbedder:
        return self.train(False)

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write model, tokenizer, image processor and `umr_recipe.json`; the folder reloads with this class."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        self.image_processor.save_pretrained(out)
        write_marker(out, "clip-sf", built_by="umr.models.clip_sf")
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "model": self.model_name, "fusion": "sum of unit embeddings",
                "instruction": "prepended to the query text", "dtype": str(self.dtype).removeprefix("torch."),
                **self.recipe.changed(PLAIN_SETTINGS),  # only when set: an unchanged model keeps its key
                "device": str(self._device), "max_text_tokens": self.max_length,
                "weights": weights_fingerprint(self.model_name)}
