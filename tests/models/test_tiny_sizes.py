"""Sized tiny models: "tiny:<recipe>@<hidden>x<layers>" builds that size once into the cache and loads it."""

from __future__ import annotations

import json

import pytest

from umr.items import Item
from umr.models.registry import load_embedder, tiny_model_dir
from umr.models.tiny import parse_tiny_name


def test_parse_sizes() -> None:
    assert parse_tiny_name("u-marvel") == ("u-marvel", {})
    assert parse_tiny_name("u-marvel@64x2") == ("u-marvel", {"hidden": 64, "layers": 2})
    for bad in ("u-marvel@64", "u-marvel@60x2", "u-marvel@64x0", "u-marvel@axb"):
        with pytest.raises(ValueError, match="<hidden>x<layers>"):
            parse_tiny_name(bad)


def test_sized_model_is_built_at_that_size_and_embeds(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UMR_CACHE", str(tmp_path))
    folder = tiny_model_dir("u-marvel@64x2")
    assert folder.name == "u-marvel-64x2-seed0"
    config = json.loads((folder / "config.json").read_text())
    text = config.get("text_config", config)
    assert text["hidden_size"] == 64 and text["num_hidden_layers"] == 2
    assert config["vision_config"]["depth"] == 2
    assert tiny_model_dir("u-marvel@64x2") == folder  # built once
    emb = load_embedder("tiny:u-marvel@64x2", device="cpu").encode([Item(text="a red circle"), Item(text="a cube")])
    assert emb.shape == (2, 64)
