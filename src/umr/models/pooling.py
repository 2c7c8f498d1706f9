"""Pooling: from token hidden states [b, L, h] to one vector per item [b, h].

Masks are 0/1 tensors [b, L]: `attention_mask` marks real tokens, `pool_mask` the tokens a mean may use
(real tokens minus the instruction span when a recipe excludes it).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from umr.errors import UmrError


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the last real token of each row (works for left or right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.long() * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def masked_mean(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    weights = pool_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def before_token(hidden: torch.Tensor, input_ids: torch.Tensor, token_id: int,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the position just before the first `token_id` in each row. A row whose token was cut by
    truncation pools its last real token, as LamRA's argmax-then-minus-one does."""
    hits = input_ids == token_id
    before = hits.long().argmax(dim=1) - 1
    last = attention_mask.long().sum(dim=1) - 1
    index = torch.where(hits.any(dim=1), before, last)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index.clamp_min(0)]


class _PreNorm(nn.Module):
    """LayerNorm on the input (and on the context, for cross-attention), then the wrapped block."""

    def __init__(self, dim: int, fn: nn.Module, context_dim: int | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_context is None:
            return self.fn(self.norm(x))
        return self.fn(self.norm(x), self.norm_context(context))


class _CrossAttention(nn.Module):
    """Multi-head attention without biases; queries from the tokens, keys and values from the latents."""

    def __init__(self, dim: int, context_dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * heads * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        def split(t: torch.Tensor) -> torch.Tensor:  # [b, n, h·d] → [b, h, n, d]
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        k, v = self.to_kv(context).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(split(self.to_q(x)), split(k), split(v))
        return self.to_out(out.transpose(1, 2).flatten(2))


class _GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gates = x.chunk(2, dim=-1)
        return x * F.gelu(gates)


class _FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult * 2), _GEGLU(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LatentAttentionPooling(nn.Module):
    """NV-Embed's latent attention (MM-Embed's head): every token attends to a trained latent array (pre-norm
    cross-attention, residual), a GEGLU feed-forward follows (pre-norm, residual), then a masked mean.

    Parameter names are those of NV-Embed's LatentAttentionModel, so a checkpoint's `latent_attention_model.*`
    weights load as they are; its width and head size are read from those weights."""

    PREFIX = "latent_attention_model."
    FILE = "latent_attention_model.safetensors"  # where umr saves the head beside the model's own weights

    def __init__(self, dim: int, num_latents: int = 512, heads: int = 8, head_dim: int | None = None) -> None:
        super().__init__()
        self.dim, self.num_latents, self.heads = dim, num_latents, heads
        head_dim = head_dim or dim // heads
        self.cross_attend_blocks = nn.ModuleList([
            _PreNorm(dim, _CrossAttention(dim, dim, heads, head_dim), context_dim=dim),
            _PreNorm(dim, _FeedForward(dim)),
        ])
        self.latents = nn.Parameter(torch.randn(num_latents, dim))

    def forward(self, hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
        attend, feed_forward = self.cross_attend_blocks
        latents = self.latents.to(hidden.dtype).unsqueeze(0).expand(hidden.shape[0], -1, -1)
        x = attend(hidden, context=latents) + hidden
        x = feed_forward(x) + x
        return masked_mean(x, pool_mask)

    def save(self, out_dir: str | Path) -> None:
        tensors = {self.PREFIX + k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(Path(out_dir) / self.FILE))

    @classmethod
    def load(cls, model_dir: str | Path, heads: int) -> LatentAttentionPooling | None:
        """The head stored in a checkpoint folder (any of its safetensors files), or None when it has none."""
        from safetensors import safe_open

        state: dict[str, torch.Tensor] = {}
        for file in sorted(Path(model_dir).glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    if key.startswith(cls.PREFIX):
                        state[key[len(cls.PREFIX):]] = f.get_tensor(key)
        if not state:
            return None
        num_latents, dim = state["latents"].shape
        inner = state["cross_attend_blocks.0.fn.to_q.weight"].shape[0]
        if inner % heads:
            raise UmrError(f"{model_dir}: latent attention width {inner} does not split into {heads} heads")
        head = cls(dim, num_latents, heads, inner // heads)
        head.load_state_dict(state)  # strict: a missing or extra key is an error naming it
        return head
