"""Tiny *pretrained* bases: `tiny:<spec>+pre`, the tiny model after one contrastive pretraining run.

    load_embedder("tiny:u-marvel@64x2+pre")      # the demo's start model (shipped in the package)
    umr pretrain-tiny u-marvel@64x2 --out DIR    # rebuilds it bit for bit (umr.train.pretrain_tiny)

Real users start from a pretrained MLLM (Qwen2-VL-Instruct, LLaVA-NeXT) or CLIP, whose image and text sides are
already aligned; a randomly initialised tiny model is not, and the demo's few hundred steps cannot both align the
modalities and learn the tasks (issue 20: 69.7 % of the staged model's global top-10 in the wrong modality). So
each tiny base the demo trains from is pretrained once, on a world of its own (`umr.train.pretrain_tiny` says how
and why). The results are small (1.4 MB and 1.1 MB) and ship inside the package with `pretrain.json` (settings,
loss, sha256), so no run pays for them. This module only finds them: the library does not depend on the training
application; a copy missing from the package is an error that names `umr pretrain-tiny`, whose default output is
where this module looks next (the umr cache).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from umr.errors import UmrError
from umr.runtime.cache import cache_dir

SUFFIX = "+pre"
#: the tiny models with a pretrained base (their settings: umr.train.pretrain_tiny.SETTINGS; the judge's:
#: umr.train.caption_judge.JUDGE)
SPECS = ("clip-sf", "u-marvel@64x2", "judge@64x2")


def folder_name(spec: str) -> str:
    return spec.replace("@", "-")


def packaged_dir(spec: str) -> Path:
    return Path(str(resources.files("umr.models"))) / "pretrained" / folder_name(spec)


def built_dir(spec: str) -> Path:
    """Where `umr pretrain-tiny SPEC` puts a rebuilt base by default (the umr cache)."""
    return cache_dir() / "pretrained" / folder_name(spec)


def pretrained_dir(spec: str) -> Path:
    """The folder of `tiny:<spec>+pre`: the packaged one, else one rebuilt into the umr cache."""
    if spec not in SPECS:
        raise UmrError(f"no pretrained tiny base {spec + SUFFIX!r}; there are {[s + SUFFIX for s in SPECS]}")
    for folder in (packaged_dir(spec), built_dir(spec)):
        if (folder / "umr_recipe.json").is_file():
            return folder
    raise UmrError(f"{spec + SUFFIX} is not in this installation of umr (its package data is missing); rebuild it "
                   f"with `umr pretrain-tiny {spec}` (minutes on a CPU), which writes {built_dir(spec)}")
