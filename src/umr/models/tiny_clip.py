"""A tiny random-weight CLIP, built offline, for tests and the offline demo of the CLIP-SF baseline.

The folder written is an ordinary Hugging Face CLIP directory (config, safetensors, fast tokenizer, slow
`CLIPImageProcessor`) plus `umr_recipe.json`, so `ClipScoreFusionEmbedder(out_dir)` loads it through the
same code path as `openai/clip-vit-base-patch32`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

BOS, EOS = "<|startoftext|>", "<|endoftext|>"

_NOUNS = ["circle", "square", "triangle", "star", "cross", "diamond", "ring", "heart", "hexagon", "oval", "rectangle",
          "arrow", "moon", "cloud", "flower", "house", "tree", "car", "boat", "cup", "chair", "lamp", "book", "ball",
          "kite", "hat", "shoe", "bird", "fish", "cat", "dog", "apple", "key", "clock"]
_COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "pink", "brown", "cyan"]
_ADJECTIVES = ["small", "large", "big", "tiny", "medium", "striped", "dotted", "plain", "checkered", "solid", "bright",
               "dark"]
_PLACES = ("on the left", "on the right", "in the center", "at the top", "at the bottom", "on a white background",
           "on a dark background", "in the corner")
_GLUE = ("a photo of a", "an image showing a", "a picture with a", "find the", "retrieve an image of a",
         "make it", "change the colour to", "which picture shows a", "this is a", "there is a")


def clip_corpus() -> list[str]:
    """A few hundred deterministic English sentences about shapes, colours and objects (BPE training data)."""
    lines: list[str] = []
    for i, noun in enumerate(_NOUNS):
        for j, colour in enumerate(_COLOURS):
            adj = _ADJECTIVES[(i + j) % len(_ADJECTIVES)]
            glue = _GLUE[(i * 3 + j) % len(_GLUE)]
            place = _PLACES[(i + 2 * j) % len(_PLACES)]
            lines.append(f"{glue} {adj} {colour} {noun} {place}.")
    lines.append(" ".join(_NOUNS + _COLOURS + _ADJECTIVES))
    lines.append("0 1 2 3 4 5 6 7 8 9 10 100 ? ! , ; : ' \" ( ) -")
    return lines


def train_clip_tokenizer(vocab_size: int = 768) -> Tokenizer:
    """Lower-casing byte-level BPE with CLIP's special tokens and a `<|startoftext|> $A <|endoftext|>` template.

    CLIPTokenizerFast insists on a `Sequence` pre-tokenizer, hence Whitespace + ByteLevel; the byte-level
    alphabet means any string (any language, emoji) still encodes.
    """
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS], show_progress=False,
                                  end_of_word_suffix="</w>",
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(clip_corpus(), trainer=trainer)
    # A word's last symbol carries the "</w>" suffix; a byte whose suffixed form is missing from the vocab would
    # be dropped silently (no unk token), so add all 256 of them, as OpenAI's vocab has.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for char in pre_tokenizers.ByteLevel.alphabet():
        vocab.setdefault(char + "</w>", len(vocab))
    tok = Tokenizer.from_str(json.dumps(spec))
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A {EOS}", pair=f"{BOS} $A {EOS} $B {EOS}",
                                                       special_tokens=[(BOS, bos), (EOS, eos)])
    return tok


def build_tiny_clip(out_dir: str | Path, seed: int = 0, *, image_size: int = 112, patch_size: int = 16,
                    hidden: int = 64, layers: int = 2, projection_dim: int = 64) -> Path:
    """Write a random CLIP (hidden 64, 2+2 layers, 112-px images in 16-px patches = 49 tokens) to out_dir.

    Deterministic from seed. Returns out_dir as a Path.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = CLIPTokenizerFast(tokenizer_object=train_clip_tokenizer(), bos_token=BOS, eos_token=EOS, pad_token=EOS,
                            unk_token=EOS, model_max_length=77)
    bos_id, eos_id = tok.convert_tokens_to_ids(BOS), tok.convert_tokens_to_ids(EOS)
    # eos_token_id == 2 would switch CLIP's text pooling to the legacy "argmax of input_ids" rule.
    assert eos_id != 2, "the BPE trainer is expected to put the special tokens first"
    heads = max(1, hidden // 32)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                         bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id),
        vision_config=dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch_size),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(out)
    recipe = {"recipe": "clip-sf", "overrides": {}, "built_by": "umr.models.tiny_clip"}
    (out / "umr_recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return out
