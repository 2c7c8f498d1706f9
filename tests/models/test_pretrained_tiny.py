"""The shipped pretrained tiny bases: they resolve, their weights are the recorded ones, pretraining is
deterministic, and pretraining is what lets the demo's models see across modalities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from umr.data.world import build_world
from umr.errors import UmrError
from umr.eval.mbeir import EvalOptions, evaluate
from umr.models import pretrained
from umr.models.pretrained import SPECS, packaged_dir
from umr.models.registry import load_embedder, tiny_model_dir
from umr.runtime.atomic import sha256_file
from umr.train.pretrain_tiny import SETTINGS, pretrain, pretrain_config


@pytest.mark.parametrize("spec", sorted(SETTINGS))
def test_shipped_base_resolves_and_matches_its_record(spec: str) -> None:
    folder = tiny_model_dir(f"{spec}+pre")
    assert folder == packaged_dir(spec)
    record = json.loads((folder / "pretrain.json").read_text())
    assert record["spec"] == f"{spec}+pre" and record["settings"]["max_steps"] == 1000
    # none of the demo's, validation or report seeds; each dataset in its own look, as the demo's world
    assert record["world"] == {"size": "small", "seed": 1000, "looks": True}
    for name, digest in record["sha256"].items():
        assert sha256_file(folder / name) == digest
    assert record["last_loss"] < 0.5 * record["first_loss"]


def test_unknown_pretrained_spec_is_refused() -> None:
    with pytest.raises(UmrError, match="no pretrained tiny base"):
        tiny_model_dir("gme+pre")


def test_every_base_the_registry_knows_has_pretraining_settings() -> None:
    from umr.train.caption_judge import SPEC as JUDGE_SPEC

    assert set(SPECS) == set(SETTINGS) | {JUDGE_SPEC}


def test_a_base_missing_from_the_package_names_the_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library only looks bases up (it does not import the trainer): a missing one is an error naming the
    command, and the command's default output is the next place looked in."""
    monkeypatch.setattr(pretrained, "packaged_dir", lambda spec: tmp_path / "package" / spec)
    monkeypatch.setenv("UMR_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UmrError, match="umr pretrain-tiny clip-sf"):
        tiny_model_dir("clip-sf+pre")
    built = pretrained.built_dir("clip-sf")
    shutil.copytree(Path(pretrained.__file__).parent / "pretrained" / "clip-sf", built)
    assert tiny_model_dir("clip-sf+pre") == built


def test_pretraining_is_bit_reproducible(tmp_path: Path) -> None:
    world = tmp_path / "world"
    build_world(world, size="tiny", seed=1000)
    digests = []
    for run in ("a", "b"):
        final = pretrain("clip-sf", tmp_path / run, max_steps=3, world=world)
        digests.append(json.loads((final / "pretrain.json").read_text())["sha256"])
    assert digests[0] == digests[1]


def test_a_variant_pretrains_from_its_own_start_with_the_base_settings(tmp_path: Path) -> None:
    base = pretrain_config("u-marvel@64x2", tmp_path / "world", tmp_path / "a")
    variant = pretrain_config("u-marvel@64x2", tmp_path / "world", tmp_path / "a", model=str(tmp_path / "start"))
    assert base.model.model == "tiny:u-marvel@64x2" and variant.model.model == str(tmp_path / "start")
    assert variant.optim == base.optim and variant.data == base.data and variant.loss == base.loss


@pytest.fixture(scope="module")
def world_s0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "tiny"
    build_world(out, size="tiny", seed=0)
    return out


def _global(model: str, world: Path) -> tuple[float, float]:
    report = evaluate(load_embedder(model, device="cpu"), world, EvalOptions(pool="global", ks=(5, 10)))
    wrong = sum(r.wrong_modality for r in report.results) / len(report.results)
    return report.average, wrong


@pytest.mark.slow
def test_the_pretrained_mllm_sees_across_modalities_where_the_random_one_does_not(world_s0: Path) -> None:
    """On the demo's world (another seed than the pretraining world), before any fine-tuning: the pretrained base
    returns the asked-for modality and finds positives; the random base mostly returns another modality."""
    pre, pre_wrong = _global("tiny:u-marvel@64x2+pre", world_s0)
    rnd, rnd_wrong = _global("tiny:u-marvel@64x2", world_s0)
    assert pre_wrong < 0.25 < rnd_wrong
    assert pre > rnd + 0.1
