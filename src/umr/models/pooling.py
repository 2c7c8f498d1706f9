"""Pooling: from token hidden states [b, L, h] to one vector per item [b, h].

Masks are 0/1 tensors [b, L]: `attention_mask` marks real tokens, `pool_mask` the tokens a mean may use
(real tokens minus the instruction span when a recipe excludes it).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the last real token of each row (works for left or right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.long() * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def masked_mean(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    weights = pool_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def before_token(hidden: torch.Tensor, input_ids: torch.Tensor, token_id: int) -> torch.Tensor:
    """Hidden state of the position just before the first `token_id` in each row."""
    hits = input_ids == token_id
    if not bool(hits.any(dim=1).all()):
        raise ValueError(f"pooling token id {token_id} missing from a prompt; the template must contain it")
    first = hits.long().argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), (first - 1).clamp_min(0)]


class LatentAttentionPooling(nn.Module):
    """NV-Embed's latent attention: token states attend to a trained latent array, an MLP follows (both with
    residuals), then a masked mean. Used by MM-Embed."""

    FILE = "latent_pooling.safetensors"
    CONFIG = "latent_pooling.json"

    def __init__(self, dim: int, num_latents: int = 512, heads: int = 8) -> None:
        super().__init__()
        self.dim, self.num_latents, self.heads = dim, num_latents, heads
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * dim**-0.5)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
        latents = self.latents.to(hidden.dtype).unsqueeze(0).expand(hidden.shape[0], -1, -1)
        attended, _ = self.attn(hidden, latents, latents, need_weights=False)
        x = hidden + attended
        x = x + self.mlp(x)
        return masked_mean(x, pool_mask)

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(out / self.FILE))
        (out / self.CONFIG).write_text(json.dumps({"dim": self.dim, "num_latents": self.num_latents,
                                                   "heads": self.heads}) + "\n")

    @classmethod
    def load(cls, model_dir: str | Path) -> LatentAttentionPooling | None:
        """The head saved in a checkpoint folder, or None when the folder has none."""
        folder = Path(model_dir)
        if not (folder / cls.FILE).is_file():
            return None
        cfg = json.loads((folder / cls.CONFIG).read_text())
        head = cls(cfg["dim"], cfg["num_latents"], cfg["heads"])
        head.load_state_dict(load_file(str(folder / cls.FILE)))
        return head
