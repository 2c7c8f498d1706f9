"""CLIP-SF: parity with a plain transformers computation, batch invariance, instructions, video, save/reload."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from umr.items import Item, ItemError
from umr.models.clip_sf import ClipScoreFusionEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umr.models.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip", seed=0)


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path) -> ClipScoreFusionEmbedder:
    return ClipScoreFusionEmbedder(tiny_clip_dir, device="cpu", dtype="fp32")


def picture(colour: str, shape: str = "circle", size: tuple[int, int] = (112, 112)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    return img


def reference(model_dir: Path, text: str | None, image: Image.Image | None) -> np.ndarray:
    """Independent CLIP-SF: plain transformers towers, normalise each, sum, normalise."""
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(model_dir).eval()
    parts = []
    with torch.no_grad():
        if text is not None:
            tokens = AutoTokenizer.from_pretrained(model_dir)([text], return_tensors="pt")
            parts.append(F.normalize(model.get_text_features(**tokens), dim=-1))
        if image is not None:
            pixels = CLIPImageProcessor.from_pretrained(model_dir)(images=[image], return_tensors="pt")
            parts.append(F.normalize(model.get_image_features(pixel_values=pixels["pixel_values"]), dim=-1))
    return F.normalize(sum(parts), dim=-1)[0].numpy()


def test_parity_with_plain_transformers(clip: ClipScoreFusionEmbedder, tiny_clip_dir: Path) -> None:
    img = picture("red")
    cases = [("a red circle on the left", None), (None, img), ("make it blue", img)]
    got = clip.encode([Item(text=t, image=i) for t, i in cases])
    for row, (text, image) in zip(got, cases):
        want = reference(tiny_clip_dir, text, image)
        assert np.abs(row - want).max() <= 1e-4


def test_fused_item_is_normalised_sum_of_parts(clip: ClipScoreFusionEmbedder) -> None:
    img = picture("green", "square")
    text_vec, image_vec, fused = clip.encode([Item(text="a green square"), Item(image=img),
                                              Item(text="a green square", image=img)])
    expected = (text_vec + image_vec) / np.linalg.norm(text_vec + image_vec)
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    assert abs(float(fused @ text_vec) - 1) > 1e-3 and abs(float(fused @ image_vec) - 1) > 1e-3


def test_batch_invariance_mixed_lengths_and_modalities(clip: ClipScoreFusionEmbedder) -> None:
    items = [
        Item(text="star"),
        Item(image=picture("blue", size=(90, 140))),
        Item(text="a very long description of a small striped yellow triangle in the corner " * 3,
             image=picture("yellow", "square")),
        Item(text="a purple heart on a dark background", id="q4"),
        Item(image=picture("orange"), text="orange"),
    ]
    together = clip.encode(items, batch_size=len(items))
    for i, item in enumerate(items):
        alone = clip.encode([item])[0]
        assert np.abs(alone - together[i]).max() <= 1e-4, f"item {i} changes with its batch"
    # input order is kept even though encode sorts by cost internally
    small_batches = clip.encode(items, batch_size=2)
    assert np.abs(small_batches - together).max() <= 1e-4


def test_output_shape_dtype_norm(clip: ClipScoreFusionEmbedder) -> None:
    out = clip.encode(["one", Item(image=picture("red")), Item(text="two", image=picture("cyan"))])
    assert out.shape == (3, clip.dim) == (3, 64)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert clip.encode([]).shape == (0, 64)
    assert clip.device == torch.device("cpu")


def test_instruction_is_prepended_to_query_text(clip: ClipScoreFusionEmbedder) -> None:
    img = picture("pink")
    instruction = "Retrieve an image that matches the caption."
    query = clip.encode_queries([Item(text="a pink circle")], instruction=instruction)
    np.testing.assert_allclose(query, clip.encode([Item(text=f"{instruction} a pink circle")]), atol=1e-6)
    assert not np.allclose(query, clip.encode([Item(text="a pink circle")]), atol=1e-3)
    # UniIR: an image-only query with an instruction is fused with the instruction text
    image_query = clip.encode_queries([Item(image=img)], instruction=instruction)
    np.testing.assert_allclose(image_query, clip.encode([Item(text=instruction, image=img)]), atol=1e-6)
    # candidates never carry the instruction
    corpus = clip.encode_corpus([Item(text="a pink circle", instruction=instruction)])
    np.testing.assert_allclose(corpus, clip.encode([Item(text="a pink circle")]), atol=1e-6)


def test_video_is_mean_of_frame_embeddings(clip: ClipScoreFusionEmbedder) -> None:
    frames = [picture(c) for c in ("red", "green", "blue")]
    single = clip.encode([Item(video=frames[:1]), Item(image=frames[0])])
    np.testing.assert_allclose(single[0], single[1], atol=1e-5)
    per_frame = clip.encode([Item(image=f) for f in frames])
    mean = per_frame.mean(0) / np.linalg.norm(per_frame.mean(0))
    np.testing.assert_allclose(clip.encode([Item(video=frames)])[0], mean, atol=1e-5)


def test_long_text_is_truncated_not_an_error(clip: ClipScoreFusionEmbedder) -> None:
    batch = clip.prepare([Item(text="red circle " * 200)])
    assert batch["input_ids"].shape[1] == 77
    assert np.isfinite(clip.encode([Item(text="red circle " * 200)])).all()


def test_prepare_index_maps(clip: ClipScoreFusionEmbedder) -> None:
    batch = clip.prepare([Item(text="a"), Item(image=picture("red")), Item(text="b", image=picture("blue"))])
    assert batch["size"] == 3
    assert batch["text_index"].tolist() == [0, 2]
    assert batch["image_index"].tolist() == [1, 2]
    assert tuple(batch["pixel_values"].shape) == (2, 3, 112, 112)


def test_forward_is_differentiable(clip: ClipScoreFusionEmbedder) -> None:
    clip.model.zero_grad()
    items = [Item(text="a red circle"), Item(image=picture("red")), Item(text="x", image=picture("blue"))]
    with torch.enable_grad():
        vecs = clip.embed(items)
        assert vecs.requires_grad
        (vecs[0] @ vecs[1] + vecs[2].sum()).backward()
    towers = {"text": clip.model.text_model.embeddings.token_embedding.weight,
              "vision": clip.model.vision_model.embeddings.patch_embedding.weight}
    for name, weight in towers.items():
        assert weight.grad is not None and weight.grad.abs().sum() > 0, f"no gradient reached the {name} tower"
    clip.model.zero_grad()


def test_save_reload_round_trip(clip: ClipScoreFusionEmbedder, tmp_path: Path) -> None:
    items = [Item(text="a brown cup"), Item(image=picture("brown")), Item(text="cup", image=picture("gray"))]
    before = clip.encode(items)
    out = clip.save_pretrained(tmp_path / "saved")
    assert (out / "umr_recipe.json").exists()
    after = ClipScoreFusionEmbedder(out).encode(items)
    np.testing.assert_array_equal(before, after)


def test_bf16_runs_and_stays_close(tiny_clip_dir: Path, clip: ClipScoreFusionEmbedder) -> None:
    half = ClipScoreFusionEmbedder(tiny_clip_dir, device="cpu", dtype="bf16")
    assert half.model.dtype == torch.bfloat16 and half.describe()["dtype"] == "bfloat16"
    items = [Item(text="a black star"), Item(text="star", image=picture("black", "square"))]
    low, full = half.encode(items), clip.encode(items)
    assert low.dtype == np.float32
    assert (low * full).sum(1).min() > 0.99


def test_bad_image_error_names_item(clip: ClipScoreFusionEmbedder, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ItemError, match="cand-7"):
        clip.encode([Item(text="ok"), Item(image=str(bad), id="cand-7")])


def test_describe_and_registry_wiring(clip: ClipScoreFusionEmbedder, tiny_clip_dir: Path) -> None:
    info = clip.describe()
    assert info["name"] == "clip-sf" and info["dim"] == 64 and info["model"] == str(tiny_clip_dir)
    from umr import load_embedder

    loaded = load_embedder(str(tiny_clip_dir))
    assert isinstance(loaded, ClipScoreFusionEmbedder)
    np.testing.assert_allclose(loaded.encode(["a red circle"]), clip.encode(["a red circle"]), atol=1e-6)
