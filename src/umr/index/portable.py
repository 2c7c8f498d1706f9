"""A saved index used on another host or from another folder: which query model fits it (`check_model`) and where
its relative image paths point (`record_image_path`). `umr search` and `umr serve` use both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from umr.errors import UmrError

#: describe() keys that say how a model runs, not what it computes: an index built on a GPU in bf16 is searched
#: on a CPU in fp32 (the vectors differ in rounding only)
RUNTIME_KEYS = ("dtype", "device")


def weights_name(model: str) -> str:
    """Which weights, by name, wherever their folder lies: a hub id, a hub cache folder
    (…/models--org--name/snapshots/<sha>) and a local folder all come down to the last part of the name."""
    path = Path(model)
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.split("--")[-1]
    return path.name or model


def model_identity(desc: dict[str, Any]) -> dict[str, Any]:
    """The part of an Embedder.describe() that changes the vectors: the recipe and its settings, and the
    weights by name (`weights_name`) and content (`weights`, a fingerprint: two runs' `final/` folders differ) —
    not the dtype, the device or where the model folder lies on this host."""
    out = {k: v for k, v in desc.items() if k not in RUNTIME_KEYS}
    if isinstance(out.get("model"), str):
        out["model"] = weights_name(out["model"])
    return out


def check_model(embedder_desc: dict[str, Any], index_info: dict[str, Any], index_dir: Path) -> None:
    """The query must be embedded by the model that embedded the corpus, or scores are meaningless. An index that
    records no model is refused too: any model of the right size would run against it, silently."""
    built_with = index_info.get("model")
    if built_with is None:
        raise UmrError(f"{index_dir} does not record which model built it, so the query model cannot be checked "
                       "against it; rebuild it with `umr index build` (which records it), or save it with "
                       "create_index(..., info={'model': embedder.describe(), 'model_spec': NAME})")
    want, got = model_identity(built_with), model_identity(embedder_desc)
    if not (want.get("weights") and got.get("weights")):  # an index saved before fingerprints, or a bare hub id
        want.pop("weights", None), got.pop("weights", None)
    if want != got:
        differ = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        raise UmrError(f"index/model mismatch: {index_dir} was built with {json.dumps(want, sort_keys=True)} but "
                       f"the query model is {json.dumps(got, sort_keys=True)} (they differ in {', '.join(differ)}); "
                       "search with the index's own model (omit --model) or rebuild the index with this one")


def record_image_path(image: str | None, index_dir: Path | None, root: str | None = None) -> Path | None:
    """Where an indexed item's image lives. The path comes from the index (trusted), never from a client.

    A relative path is resolved against the index's own root, never first against the working directory (a
    search or server started elsewhere would find nothing, or another file): `root` (the folder the index
    recorded its paths relative to, `info["image_root"]`), then the job directory and the index folder; the
    working directory only last, for indexes saved by hand without a root."""
    if not image:
        return None
    path = Path(image)
    if path.is_absolute() or index_dir is None:
        return path
    bases = [Path(root)] if root else []
    for base in (*bases, index_dir.parent, index_dir, Path.cwd()):
        if (base / path).is_file():
            return base / path
    return (bases[0] if bases else index_dir.parent) / path
