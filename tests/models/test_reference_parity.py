"""Fidelity: umr's vectors equal the published models' official inference logic (official_refs.py, written
independently of umr) on tiny random checkpoints in each model's own on-disk layout (official_layouts.py,
weights drawn with std 0.2 so that attention is sharp enough to show a wrong position, prompt or mask).

Every case must reach cosine > 0.9999; one test per recipe changes a single setting the way umr used to get it
wrong and shows the check then fails (< 0.99), so the tolerance can catch what it is meant to catch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from official_layouts import mm_embed_checkpoint, qwen_checkpoint
from official_refs import cosine, gme, lamra_family, mm_embed
from PIL import Image, ImageDraw

from umr import Item, load_embedder
from umr.models.recipe import recipe_for_checkpoint

RECIPES = ["gme", "lamra", "u-marvel", "mm-embed"]
INSTRUCTION = "retrieve an image that matches the given caption"
LONG = "a small red circle on the left of a large blue square " * 120  # > 1,800 tokens of the tiny BPE


def picture(size: tuple[int, int], colour: str = "red", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=colour)
    return img


SMALL, BIG = picture((150, 110)), picture((1150, 1000), "blue", 1)  # BIG: over every recipe's token budget
#: name → (text, image, instruction, is_query)
CASES = {
    "query text": ("a red circle on the left", None, INSTRUCTION, True),
    "query image": (None, SMALL, "find an image that looks like this one", True),
    "query text+image": ("make it blue and smaller", SMALL, INSTRUCTION, True),
    "corpus text": ("\"a photo of a red circle\"", None, None, False),
    "corpus image": (None, SMALL, None, False),
    "corpus text+image": ("a red circle", picture((90, 160), "green", 2), None, False),
    "image over the token budget": (None, BIG, None, False),
    "text over max_length": (LONG, None, None, False),
}


def reference(recipe: str, path: str, case: str) -> np.ndarray:
    text, image, instruction, is_query = CASES[case]
    if recipe == "gme":
        return gme(path, text, image, instruction, is_query)
    if recipe == "mm-embed":
        return mm_embed(path, text, image, instruction, is_query)
    return lamra_family(recipe, path, text, image, instruction, is_query)


def ours(embedder, case: str) -> np.ndarray:
    text, image, instruction, is_query = CASES[case]
    item = Item(text=text, image=image)
    if is_query:
        return embedder.encode_queries([item], instruction=instruction)[0]
    return embedder.encode_corpus([item])[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("published")
    dirs = {kind: qwen_checkpoint(kind, root / kind) for kind in ("gme", "lamra", "u-marvel")}
    dirs["mm-embed"] = mm_embed_checkpoint(root / "mm-embed")
    return {k: str(v) for k, v in dirs.items()}


@pytest.fixture(scope="module")
def embedders(published: dict[str, str]) -> dict:
    return {kind: load_embedder(path) for kind, path in published.items()}  # no recipe=: the folder tells


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("recipe", RECIPES)
def test_vectors_match_the_official_inference_code(recipe: str, case: str, published, embedders) -> None:
    assert cosine(ours(embedders[recipe], case), reference(recipe, published[recipe], case)) > 0.9999


@pytest.mark.parametrize(("recipe", "wrong", "case"), [
    ("gme", {"positions": "mrope"}, "query text+image"),  # Qwen2-VL's 3-D M-RoPE instead of the trained 1-D
    ("lamra", {"text_format": "none"}, "corpus text"),  # no UniIR format_string
    ("u-marvel", {"image_only_summary": "image"}, "corpus image"),  # LamRA's wording for image-only candidates
    ("mm-embed", {"image_newline": False}, "corpus image"),  # no image_newline after the global tile
])
def test_the_check_fails_on_the_old_settings(recipe: str, wrong: dict, case: str, published) -> None:
    broken = load_embedder(published[recipe], recipe=recipe, **wrong)
    assert cosine(ours(broken, case), reference(recipe, published[recipe], case)) < 0.99


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_layout_loads_with_no_missing_and_no_unexpected_weights(recipe: str, embedders) -> None:
    emb = embedders[recipe]
    assert emb.recipe.name == recipe
    assert emb.backbone.loading_info == {"missing": [], "unexpected": []}
    if recipe == "mm-embed":  # the head came from the checkpoint (its 8 heads of 24), not a random new one
        assert emb.pooler.latents.shape == (16, 128)
        assert emb.pooler.cross_attend_blocks[0].fn.to_q.weight.shape == (192, 128)


@pytest.mark.parametrize(("hub_id", "recipe"), [
    ("Alibaba-NLP/gme-Qwen2-VL-2B-Instruct", "gme"), ("Alibaba-NLP/gme-Qwen2-VL-7B-Instruct", "gme"),
    ("code-kunkun/LamRA-Ret", "lamra"), ("code-kunkun/LamRA-Ret-Pretrained", "lamra"),
    ("TencentBAC/U-MARVEL-Qwen2VL-7B-Instruct", "u-marvel"), ("nvidia/MM-Embed", "mm-embed"),
])
def test_every_published_id_resolves_to_its_recipe(hub_id: str, recipe: str) -> None:
    assert recipe_for_checkpoint(hub_id)[0] == recipe


def test_a_folder_without_a_marker_is_not_taken_for_another_recipe(published) -> None:
    from umr.models.registry import _infer_recipe

    assert {kind: _infer_recipe(path) for kind, path in published.items()} == {k: k for k in published}
    assert all(not (Path(p) / "umr_recipe.json").exists() for p in published.values())


#: lowest cosine of bf16 to fp32 vectors over CASES, measured 0.9987-0.9991 on the Qwen2-VL recipes and 0.9976 on
#: MM-Embed (its sharp std-0.2 weights amplify rounding; docs/recipes.md, "Speed")
BF16_FLOOR = {"gme": 0.998, "lamra": 0.998, "u-marvel": 0.998, "mm-embed": 0.997}


@pytest.mark.parametrize("recipe", RECIPES)
def test_bf16_vectors_stay_close_to_fp32(recipe: str, published, embedders) -> None:
    half = load_embedder(published[recipe], dtype="bf16")
    assert min(cosine(ours(half, case), ours(embedders[recipe], case)) for case in CASES) > BF16_FLOOR[recipe]
