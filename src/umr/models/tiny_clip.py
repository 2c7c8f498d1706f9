"""A tiny random-weight CLIP, built offline, for tests and the offline demo of the CLIP-SF baseline.

The folder written is an ordinary Hugging Face CLIP directory (config, safetensors, fast tokenizer, slow
`CLIPImageProcessor`) plus `umr_recipe.json`, so `ClipScoreFusionEmbedder(out_dir)` loads it through the
same code path as `openai/clip-vit-base-patch32`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from umr.models.recipe import write_marker

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
SUFFIX = "</w>"  # marks the last symbol of a word, as in OpenAI's CLIP vocabulary

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


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # CLIPTokenizerFast insists on a `Sequence` pre-tokenizer (design.md §7), hence Whitespace + ByteLevel.
    return pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)])


def learn_merges(words: Counter[tuple[str, ...]], max_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair, ties broken by the pair itself.

    Written here rather than using `tokenizers`' BpeTrainer because that trainer breaks frequency ties in
    hash order, so two builds with the same seed would get different merge ranks and token ids.
    """
    merges: list[tuple[str, str]] = []
    words = Counter(words)
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def train_clip_tokenizer(max_merges: int = 512) -> Tokenizer:
    """Lower-casing byte-level BPE with CLIP's vocabulary layout and `<|startoftext|> $A <|endoftext|>` template.

    Ids: the two special tokens, the 256 byte symbols, the same with the end-of-word suffix "</w>" (so any
    string in any script still encodes, with nothing dropped), then the learned merges in rank order.
    """
    normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    pre = _pre_tokenizer()
    words: Counter[tuple[str, ...]] = Counter()
    for line in clip_corpus():
        for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
            words[(*piece[:-1], piece[-1] + SUFFIX)] += 1
    merges = learn_merges(words, max_merges)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [BOS, EOS, *alphabet, *(c + SUFFIX for c in alphabet), *(a + b for a, b in merges)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, end_of_word_suffix=SUFFIX))
    tok.add_special_tokens([BOS, EOS])
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A {EOS}", pair=f"{BOS} $A {EOS} $B {EOS}",
                                                       special_tokens=[(BOS, 0), (EOS, 1)])
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
    # BOS is 0 and EOS 1 by construction: an eos_token_id of 2 would switch CLIP's text pooling to its legacy
    # "argmax of input_ids" rule, which is wrong for this vocabulary.
    heads = max(1, hidden // 32)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                         bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id),
        vision_config=dict(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch_size),
        projection_dim=projection_dim,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(out)
    write_marker(out, "clip-sf", built_by="umr.models.tiny_clip")
    return out
