"""Recipes: how a reference system turns an Item into an embedding, as data (recipes/*.yaml).

A recipe names the backbone family, the attention mask, the pooling, and the prompt template. Checkpoints
may carry `umr_recipe.json` ({"recipe": name, "overrides": {...}}) so a saved model loads with its settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from umr.errors import UmrError

FAMILIES = ("qwen2-vl", "llava-next", "clip", "text")
POOLINGS = ("last", "mean", "before_token", "latent_attention", "clip")


@dataclass
class Recipe:
    name: str
    family: str  # backbone family: which loader and input builder to use
    description: str = ""
    paper: str = ""
    default_model: str = ""
    hub_ids: list[str] = field(default_factory=list)  # hub ids that mean this recipe when no recipe is given
    attention: str = "causal"  # causal | bidirectional (padding-only mask over the whole sequence)
    pooling: str = "last"  # last | mean | before_token | latent_attention | clip
    pool_token: str | None = None  # before_token: read the hidden state just before this token
    exclude_instruction: bool = False  # leave the instruction out of mean / latent pooling
    # How the input string is built: a style of umr.models.prompts (gme | lamra | mm-embed), or "template".
    prompt: str = "template"
    # "template" style placeholders: {instruction} (wrapped by instruction_format), {image}, {text},
    # {summary} ("sentence" / "image" / "image and sentence").
    template: str = "{instruction}{image}{text}"
    instruction_format: str = "{instruction}"
    system_prompt: str | None = None  # the chat's system text (GME: when the item has no instruction)
    text_format: str = "none"  # none | uniir (UniIR's format_string, as LamRA / U-MARVEL embed text)
    instruction_markers: list[str] | None = None  # [start, end] tokens around the instruction (U-MARVEL)
    image_only_summary: str = "image"  # lamra style: the summary line of an image-only candidate
    query_prefix: str = "Query: "  # mm-embed style: what every query starts with (after "Instruct: …\n")
    image_placeholder: str = ""  # one per image or video frame; image tokens are expanded after processing
    added_tokens: list[str] = field(default_factory=list)  # tokens the recipe needs in the vocabulary
    # Qwen2-VL position ids: "1d" = 0..n-1 for every token, image tokens included (what GME, LamRA and U-MARVEL
    # ran: transformers < 4.52 with position_ids=None); "mrope" = the 3-D M-RoPE of get_rope_index.
    positions: str = "1d"
    # Qwen2-VL pre-resize (qwen-vl-utils' fetch_image, before the processor): [min, max] tokens of 28×28 px.
    image_pre_resize: list[int] | None = None
    min_image_tokens: int | None = None  # Qwen2-VL processor budget in merged tokens; None = the processor's own
    max_image_tokens: int | None = None
    image_newline: bool = False  # LLaVA-NeXT: append the model's image_newline embedding after each image
    max_frames: int = 8  # video items: frames sampled uniformly, each an image in the prompt
    max_length: int = 2048  # token cap (see truncation)
    # Over max_length: "error" (the item is named), "all" / "corpus" (cut the tail, as the reference does, for
    # every item / for documents only, `Item.is_query`). Images are never cut: that is always an error.
    truncation: str = "error"
    max_length_counts_image_once: bool = False  # mm-embed: the processor counts one <image> token per image
    tokenizer_add_eos: bool | None = None  # force the tokenizer's add_eos_token (MM-Embed's config sets it)
    num_latents: int = 512  # latent_attention head (NV-Embed), used when a checkpoint has none yet
    latent_heads: int = 8

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise UmrError(f"recipe {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.pooling not in POOLINGS:
            raise UmrError(f"recipe {self.name!r}: pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.attention not in ("causal", "bidirectional"):
            raise UmrError(f"recipe {self.name!r}: attention must be causal or bidirectional")
        if self.pooling == "before_token" and not self.pool_token:
            raise UmrError(f"recipe {self.name!r}: pooling before_token needs pool_token")
        choices = {"positions": ("1d", "mrope"), "truncation": ("error", "all", "corpus"),
                   "text_format": ("none", "uniir")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UmrError(f"recipe {self.name!r}: {key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.instruction_markers is not None and len(self.instruction_markers) != 2:
            raise UmrError(f"recipe {self.name!r}: instruction_markers is [start, end]")

    def with_overrides(self, overrides: dict[str, Any] | None) -> Recipe:
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise UmrError(f"recipe {self.name!r}: unknown settings {sorted(unknown)}")
        return Recipe(**{**asdict(self), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The settings (among `keys`, default all) where this recipe differs from its packaged YAML."""
        try:
            default = get_recipe(self.name).to_dict()
        except UmrError:  # a recipe of the user's own (a YAML file): every setting is its own
            default = {}
        return {k: v for k, v in self.to_dict().items()
                if (keys is None or k in keys) and (k not in default or v != default[k])}

    def plain_text(self, instruction: str | None, text: str | None) -> str:
        """The one string a text encoder reads (CLIP's text tower, a sentence-transformers model): the template
        with {instruction} wrapped by instruction_format, and {image} / {summary} empty."""
        instr = self.instruction_format.format(instruction=instruction.strip()) if instruction else ""
        return self.template.format(instruction=instr, image="", summary="", text=(text or "").strip()).strip()


#: what a clip or text recipe reads: its one string is built from these (`Recipe.plain_text`)
PLAIN_SETTINGS = ("template", "instruction_format")


def list_recipes() -> list[str]:
    folder = resources.files("umr.models") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def get_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """A built-in recipe by name, or a YAML/JSON file defining one."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        data = yaml.safe_load(path.read_text())
    else:
        name = str(name_or_path)
        res = resources.files("umr.models") / "recipes" / f"{name}.yaml"
        if not res.is_file():
            raise UmrError(f"unknown recipe {name!r}; built-in recipes: {', '.join(list_recipes())}")
        data = yaml.safe_load(res.read_text())
    return Recipe(**data).with_overrides(overrides)


def recipe_for_checkpoint(name_or_dir: str) -> tuple[str | None, dict[str, Any]]:
    """The recipe a checkpoint declares (umr_recipe.json), or the one whose hub_ids list it; else (None, {})."""
    marker = Path(name_or_dir) / "umr_recipe.json"
    if marker.is_file():
        data = json.loads(marker.read_text())
        return data.get("recipe"), dict(data.get("overrides") or {})
    for name in list_recipes():
        if name_or_dir in get_recipe(name).hub_ids:
            return name, {}
    return None, {}


def write_marker(out_dir: str | Path, recipe: str, overrides: dict[str, Any] | None = None, **extra: Any) -> None:
    """Write `umr_recipe.json` ({"recipe", "overrides", …extra}), the file `recipe_for_checkpoint` reads."""
    payload = {"recipe": recipe, "overrides": overrides or {}, **extra}
    (Path(out_dir) / "umr_recipe.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_recipe_marker(out_dir: str | Path, recipe: Recipe, base: str | None = None) -> None:
    """Record in a checkpoint folder which recipe (and which differing settings) it was made with."""
    reference = get_recipe(base or recipe.name)
    write_marker(out_dir, base or recipe.name,
                 {k: v for k, v in recipe.to_dict().items() if getattr(reference, k) != v})
