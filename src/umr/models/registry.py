"""`load_embedder`: the one entry point from a name to a ready Embedder; every verb's `--model` goes through it.

Accepted names:
  - a local directory (its `umr_recipe.json` says which recipe, else `recipe=` or the config's model type);
  - a hub id (downloaded for users with internet), e.g. "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct";
  - "tiny:<recipe>": the tiny random model for that recipe, built once into the umr cache;
  - "tiny:<recipe>@<size>+pre": that tiny model pretrained on a world of its own (umr.models.pretrained);
  - "text" / "minilm": the offline MiniLM text baseline;
  - "random" / "oracle": the chance floor and the answer-key ceiling (`umr.models.baselines`; the oracle needs
    `data_root`, a generated world);
  - "py:module:Class": your own Embedder subclass, built with no arguments.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.models.base import Embedder
from umr.models.recipe import PLAIN_SETTINGS, Recipe, get_recipe, recipe_for_checkpoint
from umr.runtime.cache import cache_dir

#: config.model_type → the recipe used when a checkpoint says nothing else
MODEL_TYPE_RECIPE = {"qwen2_vl": "gme", "qwen2_5_vl": "gme", "llava_next": "mm-embed", "clip": "clip-sf"}
TEXT_NAMES = {"text", "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def tiny_model_dir(spec: str, seed: int = 0) -> Path:
    """Build (once) and return the tiny model folder for "recipe[@<hidden>x<layers>]"; safe from several processes.
    "…+pre" is the pretrained base (umr.models.pretrained), shipped with the package."""
    from umr.models.pretrained import SUFFIX, pretrained_dir
    from umr.models.tiny import build_tiny, parse_tiny_name

    if spec.endswith(SUFFIX):
        return pretrained_dir(spec[:-len(SUFFIX)])
    recipe, sizes = parse_tiny_name(spec)
    size = spec.partition("@")[2]
    out = cache_dir() / "tiny" / (f"{recipe}-{size}-seed{seed}" if size else f"{recipe}-seed{seed}")
    if (out / "umr_recipe.json").is_file():
        return out
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    build_tiny(recipe, tmp, seed=seed, **sizes)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first; use theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _added_tokens(folder: Path) -> set[str]:
    tokenizer = folder / "tokenizer.json"
    if not tokenizer.is_file():
        return set()
    return {t.get("content") for t in json.loads(tokenizer.read_text()).get("added_tokens", [])}


def _infer_recipe(path: str) -> str | None:
    """A folder with no umr_recipe.json: the published checkpoints tell themselves apart by what they add —
    U-MARVEL its instruction markers, LamRA its <emb> token, MM-Embed its NVMMEmbedModel architecture."""
    folder = Path(path)
    config = folder / "config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        model_type = data.get("model_type")
        if model_type in ("qwen2_vl", "qwen2_5_vl"):
            added = _added_tokens(folder)
            return "u-marvel" if "<instruction_start>" in added else "lamra" if "<emb>" in added else "gme"
        if model_type in MODEL_TYPE_RECIPE:
            return MODEL_TYPE_RECIPE[model_type]
        if (folder / "modules.json").is_file():
            return "text"
    return None


def import_object(spec: str, what: str = "--model") -> Any:
    """'py:module:Attr' → module.Attr (a class or factory of the caller's own); `what` names the option in errors."""
    module_name, _, attr = spec.removeprefix("py:").partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UmrError(f"{what} {spec!r}: cannot import {attr!r} from module {module_name!r} ({exc})") from exc


def _plain_recipe(spec: Recipe) -> Recipe:
    """A clip / text recipe, refused when it changes a setting those models have no use for (rather than
    accepting it and embedding as if it were not there)."""
    ignored = sorted(k for k in spec.changed() if k not in PLAIN_SETTINGS)
    if ignored:
        raise UmrError(f"recipe {spec.name!r} ({spec.family} model) does not use {ignored}; it reads only "
                       f"{list(PLAIN_SETTINGS)}")
    return spec


def load_embedder(name_or_dir: str | Path, recipe: str | None = None, device: str | None = None,
                  dtype: str | None = None, data_root: str | Path | None = None, **overrides: Any) -> Embedder:
    """Load any umr embedder (the names are in the module docstring). `overrides` change recipe settings (e.g.
    max_image_tokens=512); `data_root` is the generated world the oracle reads its answer keys from."""
    name = str(name_or_dir)
    if name.startswith("py:"):
        return import_object(name)()
    if name in ("random", "oracle"):
        from umr.models.baselines import OracleEmbedder, RandomEmbedder

        if name == "random":
            return RandomEmbedder()
        if data_root is None:
            raise UmrError("the oracle needs the data root of a generated world")
        return OracleEmbedder(data_root)
    if name.startswith("tiny:"):
        name = str(tiny_model_dir(name.split(":", 1)[1]))
    if name in TEXT_NAMES or recipe == "text":
        from umr.models.text import TextEmbedder

        return TextEmbedder(None if name in TEXT_NAMES else name, device=device,
                            recipe=_plain_recipe(get_recipe("text", overrides)))

    declared, saved_overrides = recipe_for_checkpoint(name)
    chosen = recipe or declared
    if chosen is None and Path(name).is_dir():
        chosen = _infer_recipe(name)
    if chosen is None:
        raise UmrError(f"cannot tell which recipe {name!r} uses; pass recipe= (one of gme, u-marvel, lamra, "
                       f"mm-embed, clip-sf, text) or `umr recipes` to list them")
    spec = get_recipe(chosen, {**(saved_overrides if chosen == declared else {}), **overrides})
    if spec.family == "text":
        from umr.models.text import TextEmbedder

        return TextEmbedder(name, device=device, recipe=_plain_recipe(spec))
    if spec.family == "clip":
        from umr.models.clip_sf import ClipScoreFusionEmbedder

        return ClipScoreFusionEmbedder(name, device=device, dtype=dtype, recipe=_plain_recipe(spec))
    from umr.models.mllm import MLLMEmbedder

    return MLLMEmbedder(name, spec, device=device, dtype=dtype)
