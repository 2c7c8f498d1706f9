"""Tiny real-architecture models, built offline from configs with random weights.

Every folder written here is an ordinary Hugging Face directory (config, safetensors, tokenizer, image
processor) plus `umr_recipe.json`, so it loads through exactly the code path a user runs with
`Alibaba-NLP/gme-Qwen2-VL-2B-Instruct`. Used by tests, the offline demo and benchmarks.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from umr.errors import UmrError
from umr.models.recipe import write_marker

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
LLAVA_SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]

_WORDS = ["a", "an", "the", "of", "and", "with", "in", "on", "to", "is", "are", "this", "that", "above", "below",
          "left", "right", "center", "small", "large", "big", "tiny", "medium", "red", "green", "blue", "yellow",
          "purple", "orange", "black", "white", "gray", "pink", "brown", "cyan", "circle", "square", "triangle",
          "star", "cross", "diamond", "ring", "heart", "striped", "dotted", "plain", "checkered", "solid",
          "background", "foreground", "image", "photo", "picture", "sentence", "passage", "card", "question", "answer",
          "what", "which", "where", "who", "how", "find", "retrieve", "similar", "same", "different", "make", "it",
          "change", "turn", "into", "smaller", "larger", "bigger", "color", "colour", "shape", "pattern", "position",
          "object", "entity", "named", "fact", "facts", "known", "famous", "located", "city", "country", "river",
          "mountain", "year", "founded", "built", "discovered", "system", "assistant", "user", "helpful", "you", "are",
          "summarize", "above", "in", "one", "word", "instruct", "query", "candidate", "relevant", "yes", "no",
          "given", "text", "retrieve", "matches", "describes", "shows", "contains", "document", "news", "fashion",
          "product", "item", "caption", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "100", ".", ",", ":",
          ";", "?", "!", "'", '"', "(", ")", "-", "\n"]


def _corpus() -> list[str]:
    """A deterministic sentence corpus so the BPE merges cover the words umr's data and prompts use."""
    words = [w for w in _WORDS if w]
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 7)]
    lines += [f"{a} {b} {c}" for a in words[:40] for b in words[40:60] for c in ("circle", "square", "star")]
    return lines


def train_bpe(special_tokens: list[str], max_merges: int = 700) -> Tokenizer:
    """Byte-level BPE trained offline, identical on every build (tie-free merge learner); any string encodes."""
    from umr.models.tiny_clip import learn_merges

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(tuple(piece) for line in _corpus() for piece, _ in pre.pre_tokenize_str(line))
    merges = learn_merges(words, max_merges)
    tokens = [*special_tokens, *sorted(pre_tokenizers.ByteLevel.alphabet()), *(a + b for a, b in merges)]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges=merges))
    tok.add_special_tokens(special_tokens)
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    return tok


def build_tiny_qwen2_vl(out_dir: str | Path, extra_tokens: list[str] | None = None, seed: int = 0,
                        hidden: int = 128, layers: int = 4, image_px: int = 112, v25: bool = False) -> Path:
    """Random Qwen2-VL (or Qwen2.5-VL) with a 14-px patch, 2×2 merge: a 112-px image is 16 LLM tokens."""
    from transformers import Qwen2TokenizerFast, Qwen2VLImageProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = Qwen2TokenizerFast(tokenizer_object=train_bpe(QWEN_SPECIAL), eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", unk_token=None, bos_token=None,
                             additional_special_tokens=QWEN_SPECIAL[1:])
    if extra_tokens:
        tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL[1:] + extra_tokens})
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    heads = 4
    text = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=2, max_position_embeddings=4096,
                rope_scaling={"type": "mrope", "mrope_section": _mrope_section(hidden // heads)},
                tie_word_embeddings=True, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=layers, embed_dim=64, hidden_size=hidden, num_heads=4, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    if v25:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        vision = dict(depth=layers, hidden_size=64, out_hidden_size=hidden, intermediate_size=128, num_heads=4,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                      fullatt_block_indexes=[layers - 1])
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision,
                                  image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                                  vision_start_token_id=ids["<|vision_start|>"],
                                  vision_end_token_id=ids["<|vision_end|>"])
        model = Qwen2_5_VLForConditionalGeneration(config)
    else:
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                               video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                               vision_end_token_id=ids["<|vision_end|>"])
        model = Qwen2VLForConditionalGeneration(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    # min = max keeps every tiny image at exactly image_px² pixels (16 tokens at 112 px): cheap and predictable.
    Qwen2VLImageProcessor(min_pixels=image_px * image_px, max_pixels=image_px * image_px, patch_size=14,
                          merge_size=2, temporal_patch_size=2).save_pretrained(out)
    return out


def _mrope_section(head_dim: int) -> list[int]:
    half = head_dim // 2
    first = half // 4
    rest = (half - first) // 2
    return [first, rest, half - first - rest]


def build_tiny_llava_next(out_dir: str | Path, seed: int = 0, hidden: int = 128, layers: int = 4,
                          image_px: int = 112) -> Path:
    """Random LLaVA-NeXT: a CLIP vision tower (14-px patches) + Mistral LLM; a 112-px tile is 64 tokens."""
    from transformers import (
        CLIPVisionConfig,
        LlamaTokenizerFast,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        MistralConfig,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = LlamaTokenizerFast(tokenizer_object=train_bpe(LLAVA_SPECIAL), unk_token="<unk>", bos_token="<s>",
                             eos_token="</s>", pad_token="<pad>", add_bos_token=True, add_eos_token=False,
                             additional_special_tokens=["<image>"], legacy=False)
    text = MistralConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         sliding_window=None, max_position_embeddings=4096, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4,
                              image_size=image_px, patch_size=14, projection_dim=64)
    pinpoints = [[image_px, image_px], [image_px, 2 * image_px], [2 * image_px, image_px]]
    config = LlavaNextConfig(text_config=text, vision_config=vision, image_token_index=tok.convert_tokens_to_ids(
        "<image>"), image_grid_pinpoints=pinpoints, vision_feature_layer=-2, vision_feature_select_strategy="default",
        image_seq_length=(image_px // 14) ** 2)
    LlavaNextForConditionalGeneration(config).save_pretrained(out)
    tok.save_pretrained(out)
    LlavaNextImageProcessor(size={"shortest_edge": image_px}, crop_size={"height": image_px, "width": image_px},
                            image_grid_pinpoints=pinpoints).save_pretrained(out)
    return out


#: recipe → (builder, umr_recipe.json overrides). Overrides keep tiny images at their 16-token budget.
TINY_BUILDERS: dict[str, Any] = {
    "gme": lambda out, seed, **kw: build_tiny_qwen2_vl(out, seed=seed, **kw),
    "gme-qwen2.5": lambda out, seed, **kw: build_tiny_qwen2_vl(out, seed=seed, v25=True, **kw),
    "u-marvel": lambda out, seed, **kw: build_tiny_qwen2_vl(
        out, seed=seed, extra_tokens=["<emb>", "<instruction_start>", "<instruction_end>"], **kw),
    "lamra": lambda out, seed, **kw: build_tiny_qwen2_vl(out, seed=seed, extra_tokens=["<emb>"], **kw),
    "mm-embed": lambda out, seed, **kw: build_tiny_llava_next(out, seed=seed, **kw),
}
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "gme": {"min_image_tokens": 16, "max_image_tokens": 16},
    "gme-qwen2.5": {"min_image_tokens": 16, "max_image_tokens": 16},
    "u-marvel": {"min_image_tokens": 16, "max_image_tokens": 16},
    "lamra": {"min_image_tokens": 16, "max_image_tokens": 16},
    "mm-embed": {"num_latents": 32, "latent_heads": 4},
}


def tiny_recipes() -> list[str]:
    return sorted([*TINY_BUILDERS, "clip-sf"])


def parse_tiny_name(spec: str) -> tuple[str, dict[str, int]]:
    """"u-marvel" → ("u-marvel", {}); "u-marvel@64x2" → ("u-marvel", {"hidden": 64, "layers": 2}).

    The size suffix picks the LLM width and the depth of both towers (the demo's model is 64x2: it learns the
    offline world faster per step than the default 128x4, see examples/mllm_probe.py)."""
    recipe, _, size = spec.partition("@")
    if not size:
        return recipe, {}
    hidden, sep, layers = size.partition("x")
    if not (sep and hidden.isdigit() and layers.isdigit() and int(hidden) % 32 == 0 and int(layers) > 0):
        raise UmrError(f"tiny model size {size!r} must be <hidden>x<layers>, hidden a multiple of 32, e.g. 64x2")
    return recipe, {"hidden": int(hidden), "layers": int(layers)}


def build_tiny(recipe: str, out_dir: str | Path, seed: int = 0, **sizes: int) -> Path:
    """Build the tiny model for a recipe into out_dir (an HF directory + umr_recipe.json); `sizes`: hidden, layers."""
    out = Path(out_dir)
    if recipe == "clip-sf":
        from umr.models.tiny_clip import build_tiny_clip

        return build_tiny_clip(out, seed=seed, **sizes)
    if recipe not in TINY_BUILDERS:
        raise UmrError(f"no tiny model for recipe {recipe!r}; choose one of {tiny_recipes()}")
    TINY_BUILDERS[recipe](out, seed, **sizes)
    base_recipe = "gme" if recipe == "gme-qwen2.5" else recipe
    write_marker(out, base_recipe, TINY_OVERRIDES.get(recipe), built_by="umr.models.tiny")
    if base_recipe == "mm-embed":
        to_mm_embed_layout(out, seed, TINY_OVERRIDES["mm-embed"])
    return out


def to_mm_embed_layout(folder: Path, seed: int, head: dict[str, int]) -> None:
    """Rewrite a llava-hf LLaVA-NeXT folder in nvidia/MM-Embed's layout: the LLM as `language_model.*` (no LM
    head), `vision_tower.*`, `multi_modal_projector.*`, `image_newline` and a random NV-Embed latent-attention
    head `latent_attention_model.*`, in one safetensors file, with the config fields MM-Embed's carries."""
    import json

    from safetensors.torch import save_file
    from transformers import LlavaNextModel

    from umr.models.pooling import LatentAttentionPooling

    model = LlavaNextModel.from_pretrained(folder)
    torch.manual_seed(seed + 1)
    pooler = LatentAttentionPooling(model.config.text_config.hidden_size, head["num_latents"], head["latent_heads"])
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update({LatentAttentionPooling.PREFIX + k: v.contiguous() for k, v in pooler.state_dict().items()})
    for old in folder.glob("model*.safetensors*"):
        old.unlink()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["NVMMEmbedModel"], retriever="nvidia/NV-Embed-v1", padding_side="right",
                  add_eos_token=True, global_image_patch_only=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
