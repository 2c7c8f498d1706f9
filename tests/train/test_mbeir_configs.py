"""The shipped M-BEIR training configs run: each on the real-layout fixture with its model swapped for the tiny
twin of its recipe and every stage cut to 2 steps (`umr train --set`), so a typo in a config fails here."""

from __future__ import annotations

import re
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from umr.cli import main
from umr.cli.cmd_train import apply_overrides

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from mbeir_real import build_real_layout

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "src/umr/train/configs/mbeir").glob("*.yaml"))


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_layout(tmp_path_factory.mktemp("mbeir") / "M-BEIR")


def test_the_configs_ship_with_the_package():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["umr"]
    assert {p.stem for p in CONFIGS} >= {"u-marvel-qwen2vl-7b", "lamra-ret-qwen2vl-7b", "mm-embed-llava-next-7b",
                                         "gme-qwen2vl-2b", "gme-qwen2vl-7b"}
    for path in CONFIGS:
        rel = path.relative_to(REPO / "src/umr").as_posix()
        assert any(fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel
        header = path.read_text().split("\nmodel:")[0]
        assert "Expected" in header and "Compute" in header  # what it should reach, on what hardware
        assert "GitHub" in header or "UNCONFIRMED" in header  # cited from code, or marked as not checked


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_field_names_its_source(config: Path):
    """Each setting carries a source tag beside it, and every tag is explained in the header."""
    header, _, body = config.read_text().partition("\nmodel:")
    for line in ("model:" + body).splitlines():
        if line.strip() and line.strip() != "stages:":
            assert re.search(r"# .*\[\w+\]", line), f"{config.name}: no source beside {line.strip()[:60]!r}"
            for tag in re.findall(r"\[(\w+)\]", line.partition("#")[2]):
                assert f"[{tag}]" in header, f"{config.name}: tag [{tag}] is not explained in the header"


def test_overrides_follow_the_configs_structure(capsys: pytest.CaptureFixture[str]):
    raw = {"lr": 1.0, "data": "root", "lora": {"r": 8},
           "stages": [{"name": "nli", "data": "nli.jsonl", "lr": 2.0, "mine": {"top": 100}}, {"name": "b"}]}
    out = apply_overrides(raw, ["lr=1e-4", "data=elsewhere", "lora.r=4", "deepspeed=null", "tasks=[task0, task3]"])
    assert out["lr"] == 1e-4 and out["data"] == "elsewhere" and out["lora"] == {"r": 4} and out["deepspeed"] is None
    assert out["stages"][0] == raw["stages"][0] and out["stages"][1] == {"name": "b"}  # a stage's own value stays
    assert out["tasks"] == ["task0", "task3"]
    assert "stage(s) nli keep their own lr" in capsys.readouterr().err  # said, not silently done
    out = apply_overrides(raw, ["stages.nli.data=x.jsonl", "stages.1.lr=3", "stages.*.mine.top=5"])
    assert out["stages"][0]["data"] == "x.jsonl" and out["stages"][1]["lr"] == 3
    assert out["stages"][0]["mine"] == {"top": 5} and "mine" not in out["stages"][1] and "mine" not in out
    assert raw["lr"] == 1.0 and raw["stages"][0]["mine"]["top"] == 100  # the input is not changed
    for bad, words in (("lr", "KEY=VALUE"), ("mine.top=5", "only stage(s) nli set 'mine'; name one "
                                                                 "(stages.nli.mine.top=…)"),
                       ("stages.cc3m.lr=1", "no stage named 'cc3m' (stages: nli, b)"),
                       ("stages.*.symmetric=true", "no stage sets 'symmetric'"), ("stages=[]", "name a stage")):
        with pytest.raises(ValueError, match=re.escape(words)):
            apply_overrides(raw, [bad])


def test_set_goes_through_the_configs_own_checks(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: tiny:gme\ndata: nowhere\n")
    assert main(["train", "--config", str(cfg), "--set", "schedule=sideways"]) == 2
    assert "schedule must be one of constant, linear, cosine, not 'sideways'" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--set", "no_such_option=1"]) == 2
    assert "unknown training option(s) ['no_such_option']" in capsys.readouterr().err


def _pairs_files(root: Path, folder: Path) -> dict[str, Path]:
    """Tiny stand-ins for the pairs files some stages read (NLI text pairs, CC3M captions, text pairs)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = next(root.rglob("*.png"))
    text = folder / "text.jsonl"
    text.write_text("".join(f'{{"query": "sentence {i}", "positive": "a sentence numbered {i}"}}\n'
                            for i in range(8)))
    captions = folder / "captions.jsonl"
    captions.write_text("".join(f'{{"query": {{"image": "{image}"}}, "positive": "caption {i}"}}\n'
                                for i in range(8)))
    return {"nli": text, "pretrain": text, "text": text, "cc3m": captions}


def test_a_stage_that_would_train_nothing_stops_naming_it(real_root, tmp_path, capsys):
    """The newcomer's first run: GME's batch of 128 against a root's 48 training queries (here MSCOCO's) trained
    0 steps, mined with the untrained model and wrote final/ with exit 0."""
    config = REPO / "src/umr/train/configs/mbeir/gme-qwen2vl-2b.yaml"
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--data", str(real_root), "--set", "model=tiny:gme",
                 "max_steps=2", "deepspeed=null", f"output_dir={out}", "datasets=mscoco"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert ("stage 0 (instruct): 48 training examples make no full batch of batch_size 128, so nothing "
                     "would be trained; set batch_size ≤ 48" in err), err
    assert not (out / "stage-0-instruct" / "final").exists() and not (out / "stage-1-hard").exists()


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_two_steps_on_the_real_layout(config, real_root, tmp_path):
    raw = yaml.safe_load(config.read_text())
    out = tmp_path / "run"
    overrides = [f"model=tiny:{raw['recipe']}", f"data={real_root}", f"output_dir={out}", "max_steps=2",
                 "batch_size=4", "deepspeed=null", "save_every=0"]
    stages = [s.get("name") for s in raw["stages"]]
    pairs = _pairs_files(real_root, tmp_path / "pairs")
    own_data = {s["name"]: pairs[s["name"]] for s in raw["stages"] if "data" in s}  # the pairs stages
    overrides += [f"stages.{name}.data={path}" for name, path in own_data.items()]
    for key, extra in (("batch_size", ["stages.*.batch_size=4"]), ("deepspeed", ["stages.*.deepspeed=null"]),
                       ("max_steps", ["stages.*.max_steps=2"]),
                       ("mine", ["stages.*.mine.top=8", "stages.*.mine.max_per_set=4"]),
                       ("teacher", ["stages.*.teacher.top=8", "stages.*.teacher.max_per_set=4"]),
                       ("mix_data", [f"stages.*.mix_data={real_root}"])):
        if any(key in s for s in raw["stages"]):
            overrides += extra
    assert main(["train", "--config", str(config), "--set", *overrides]) == 0
    for i, name in enumerate(stages):  # every stage ran (or, for a reranker, wrote its model) on its own data
        stage_dir = out / f"stage-{i}-{name}"
        assert (stage_dir / "final").is_dir(), name
        if (stage_dir / "train_config.yaml").is_file():
            data = yaml.safe_load((stage_dir / "train_config.yaml").read_text())["data"]
            assert Path(data) == own_data.get(name, real_root) or name in ("hard", "distill"), (name, data)
