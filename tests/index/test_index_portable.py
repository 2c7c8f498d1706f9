"""A saved index used elsewhere: another host's dtype, device and model folder; another working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hash_embedder import HashEmbedder
from index_helpers import write_jsonl
from PIL import Image

from umr.cli import main
from umr.errors import UmrError
from umr.index import create_index
from umr.index.portable import check_model, model_identity, weights_name
from umr.items import Item

GPU_DESC = {"name": "gme", "dim": 64, "model": "/gpu-box/cache/models--Alibaba-NLP--gme-2B/snapshots/abc123",
            "family": "qwen2_vl", "pooling": "last", "dtype": "bfloat16", "device": "cuda:0"}


def test_identity_is_what_changes_the_vectors() -> None:
    cpu = {**GPU_DESC, "model": "/home/me/models/gme-2B", "dtype": "float32", "device": "cpu"}
    assert model_identity(cpu) == model_identity(GPU_DESC) == {**model_identity(cpu), "model": "gme-2B"}
    assert weights_name("Alibaba-NLP/gme-2B") == "gme-2B"
    check_model(cpu, {"model": GPU_DESC}, Path("idx"))
    for other in ({"pooling": "mean"}, {"model": "/home/me/models/lamra"}, {"name": "u-marvel"}):
        with pytest.raises(UmrError, match=f"index/model mismatch.*differ in {next(iter(other))}"):
            check_model({**cpu, **other}, {"model": GPU_DESC}, Path("idx"))


def test_an_index_built_on_a_gpu_is_searched_on_a_cpu(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A tiny Qwen2-VL index whose index.json says bf16 on cuda from another host's cache folder: the same
    weights by name, so `umr search` (fp32 or --dtype bf16 on this CPU) accepts it; it refused it before."""
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": f"d{i}", "text": f"a {c} circle"}
                                                for i, c in enumerate(["red", "blue", "green"])])
    assert main(["index", "build", "--model", "tiny:gme", "--corpus", str(corpus), "--out", str(tmp_path / "job"),
                 "--no-progress"]) == 0
    spec_file = tmp_path / "job" / "index" / "index.json"
    spec = json.loads(spec_file.read_text())
    model = spec["info"]["model"]
    spec["info"]["model"] = {**model, "dtype": "bfloat16", "device": "cuda:0",
                             "model": f"/gpu-box/.cache/umr/tiny/{Path(model['model']).name}"}
    spec_file.write_text(json.dumps(spec))
    for extra, tolerance in (([], 1e-5), (["--dtype", "bf16"], 0.02)):
        capsys.readouterr()
        assert main(["search", "--index", str(tmp_path / "job"), "--text", "a red circle", "-k", "2", "--json",
                     *extra]) == 0, capsys.readouterr().err
        results = json.loads(capsys.readouterr().out)["results"]
        # GME renders a query without instruction as it renders the document of the same text: d0 scores ~1
        assert [r["id"] for r in results][:1] == ["d0"] and len(results) == 2, results
        assert results[0]["score"] == pytest.approx(1.0, abs=tolerance) and results[1]["score"] < results[0]["score"]


def test_relative_image_paths_start_at_the_recorded_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    """An index saved with relative image paths and its image_root, searched (and re-ranked) from elsewhere."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    for name, rgb in {"red": (220, 20, 20), "blue": (20, 40, 220)}.items():
        Image.new("RGB", (16, 16), rgb).save(root / "images" / f"{name}.png")
    model = HashEmbedder()
    records = [{"id": name, "image": f"images/{name}.png", "modality": "image"} for name in ("red", "blue")]
    vectors = model.encode_corpus([Item(image=str(root / r["image"]), id=r["id"]) for r in records])
    index = create_index(model.dim, info={"model": model.describe(), "model_spec": "py:hash_embedder:HashEmbedder",
                                          "image_root": str(root)})
    index.add(vectors, records)
    index.save(tmp_path / "idx")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    seen: list[str] = []

    class Reads:
        """A re-ranker that opens every candidate image, as an MLLM re-ranker does."""

        def __init__(self, *args: object, **kwargs: object) -> None: ...

        def score(self, query: Item, cands: list[Item]) -> list[float]:
            seen.extend(str(c.image) for c in cands)
            return [float(Image.open(c.image).getpixel((0, 0))[2] > 100) for c in cands]  # prefers blue

    monkeypatch.setattr("umr.rerank.prompted.Reranker", Reads)
    assert main(["search", "--index", str(tmp_path / "idx"), "--image", str(root / "images/red.png"), "-k", "2",
                 "--rerank", "2", "--fuse-weight", "10", "--json"]) == 0, capsys.readouterr().err
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["id"] for r in results] == ["blue", "red"]
    assert all(Path(r["image"]).is_file() for r in results) and all(Path(p).is_file() for p in seen)


def test_two_final_folders_with_other_weights_are_told_apart(tmp_path: Path) -> None:
    """Weights are matched by name *and* a fingerprint of their content: a copy of the same folder elsewhere fits,
    another run's `final/` (same name, other weights) is refused, an index saved before fingerprints still fits."""
    import shutil

    from umr.models.fingerprint import weights_fingerprint
    from umr.models.tiny import build_tiny

    a = build_tiny("gme", tmp_path / "run-a" / "final", seed=0)
    b = build_tiny("gme", tmp_path / "run-b" / "final", seed=1)
    copy = Path(shutil.copytree(a, tmp_path / "elsewhere" / "final"))
    fp_a, fp_b, fp_copy = (weights_fingerprint(p) for p in (a, b, copy))
    assert fp_a == fp_copy != fp_b and weights_fingerprint("Alibaba-NLP/gme-2B") is None
    desc = {**GPU_DESC, "model": str(a), "weights": fp_a}
    check_model({**desc, "model": str(copy)}, {"model": desc}, Path("idx"))
    with pytest.raises(UmrError, match="differ in weights"):
        check_model({**desc, "model": str(b), "weights": fp_b}, {"model": desc}, Path("idx"))
    old_index = {k: v for k, v in desc.items() if k != "weights"}
    check_model({**desc, "model": str(b), "weights": fp_b}, {"model": old_index}, Path("idx"))
