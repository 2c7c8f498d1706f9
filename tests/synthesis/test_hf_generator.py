"""The HF generator path: a tiny random causal LM (and the tiny Qwen2-VL) write queries end to end."""

from __future__ import annotations

import json
from pathlib import Path

from synth_helpers import image_folder, tiny_causal_lm

from umr.cli import main
from umr.synthesis.factory import make_generator
from umr.synthesis.generators import Request
from umr.synthesis.kinds import KINDS
from umr.synthesis.sources import load_sources
from umr.train.data import read_mbeir_root_pairs


def test_cli_with_tiny_random_causal_lm(tmp_path: Path, capsys) -> None:
    model = tiny_causal_lm(tmp_path / "lm")
    folder = image_folder(tmp_path / "imgs", 4)
    out = tmp_path / "out"
    args = ["synthesize", "--generator", str(model), "--source", str(folder), "--out", str(out),
            "--filter-model", "random", "--top-k", "3", "--max-new-tokens", "6", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "filtered_out" in printed and "kept" in printed
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["generator"] == f"hf:{model}"
    for c in summary["counts"].values():
        assert c["sources"] == 4
        assert c["generated"] + c["failed"] == 4
        assert c["generated"] == c["duplicates"] + c["filtered_out"] + c["kept"]
    kept = sum(c["kept"] for c in summary["counts"].values())
    if kept:
        assert len(read_mbeir_root_pairs(out)) == kept
    # rerun: greedy decoding was recorded, nothing is generated again
    assert main(args) == 0
    assert "this run: 0 generated" in capsys.readouterr().out


def test_qwen2_vl_generator_sees_the_image(tmp_path: Path) -> None:
    from umr.models.registry import tiny_model_dir

    gen = make_generator(str(tiny_model_dir("gme")), max_new_tokens=4, device="cpu", batch_size=2)
    assert gen.vision
    src = load_sources(image_folder(tmp_path / "imgs", 3))[:3]
    texts = gen.generate([Request(s, KINDS["it2it"]) for s in src])
    assert len(texts) == 3 and all(t is None or isinstance(t, str) for t in texts)
