"""Faults around training: a kill while a checkpoint is written, and config values YAML gets wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from test_cli_stages_resume import make_pairs

from umr import load_embedder
from umr.cli import main
from umr.train.config import KEY_PART, TrainConfig


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in load_embedder(run / "final", device="cpu").backbone.model.state_dict()
            .items()}


def test_kill_during_checkpoint_then_resume_equals_an_uninterrupted_run(tiny_gme_dir, draw, tmp_path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = make_pairs(tmp_path / "data", draw)  # 8 pairs, batch 4: 2 steps an epoch, 6 in all
    config = {"model": tiny_gme_dir, "data": str(data), "batch_size": 4, "epochs": 3, "lr": 1e-3,
              "schedule": "linear", "num_negatives": 1, "save_every": 2, "keep_checkpoints": 2, "log_every": 1}
    for run in ("a", "b"):
        (tmp_path / f"{run}.yaml").write_text(yaml.safe_dump({**config, "output_dir": str(tmp_path / run)}))
    assert main(["train", "--config", str(tmp_path / "a.yaml")]) == 0

    real_save = torch.save

    def killed_mid_save(obj, path, *args, **kwargs):  # torch.save's signature
        if isinstance(obj, dict) and obj.get("step") == 4:
            Path(path).write_bytes(b"PK\x03\x04 half a zip")  # what a SIGKILL mid-write leaves
            raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", killed_mid_save)
    assert main(["train", "--config", str(tmp_path / "b.yaml")]) == 130
    monkeypatch.setattr(torch, "save", real_save)
    run_b = tmp_path / "b"
    assert sorted(p.name for p in run_b.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4.tmp"]
    capsys.readouterr()

    assert main(["train", "--config", str(tmp_path / "b.yaml"), "--resume"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "model written" in out.out
    # resumed from checkpoint-2; the partial folder is gone and pruning kept the newest two real ones
    assert sorted(p.name for p in run_b.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    want, got = final_weights(tmp_path / "a"), final_weights(run_b)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name


def test_pruning_ignores_stale_tmp_folders(tiny_gme_dir, draw, tmp_path) -> None:
    from umr.train.trainer import Trainer

    data = make_pairs(tmp_path / "data", draw)
    out = tmp_path / "run"
    (out / "checkpoint-9.tmp").mkdir(parents=True)  # would sort last and crash int('9.tmp') before
    config = TrainConfig.of(model=tiny_gme_dir, data=str(data), output_dir=str(out), batch_size=4, epochs=2,
                         save_every=1, keep_checkpoints=1)
    trainer = Trainer(config, embedder=load_embedder(tiny_gme_dir, device="cpu"))
    trainer.fit()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-9.tmp"]
    assert trainer.latest_checkpoint() == out / "checkpoint-4"


@pytest.mark.parametrize(("text", "field", "value"), [
    ("lr: 1e-4", "lr", 1e-4),                    # PyYAML reads 1e-4 as a string
    ("lr: '0.001'", "lr", 1e-3),
    ("batch_size: '4'", "batch_size", 4),
    ("epochs: 2.0", "epochs", 2),
    ("temperature: 5e-2", "temperature", 0.05),
    ("grad_clip: null", "grad_clip", None),
    ("lora: {r: '8', alpha: 1e1}", "lora", (8, 10.0)),
])
def test_numeric_strings_are_coerced(text: str, field: str, value: object) -> None:
    config = TrainConfig.from_dict(yaml.safe_load(text))
    got = getattr(getattr(config, KEY_PART[field]), field)  # the part that holds the key
    assert (got.r, got.alpha) == value if field == "lora" else got == value
    assert type(got) is type(value) or field == "lora"


@pytest.mark.parametrize(("text", "words"), [
    ("epochs: -1", "epochs: must be ≥ 1, got -1"),
    ("epochs: 0", "epochs: must be ≥ 1, got 0"),
    ("num_negatives: -3", "num_negatives: must be ≥ 0, got -3"),
    ("save_every: -2", "save_every: must be ≥ 0, got -2"),
    ("batch_size: 0", "batch_size: must be ≥ 1"),
    ("lr: 0", "lr: must be > 0"),
    ("lr: fast", "lr: expected a number, got 'fast'"),
    ("lr: [1]", "lr: expected a number, got list"),
    ("epochs: 1.5", "epochs: expected an integer, got 1.5"),
    ("epochs: true", "epochs: expected an integer, got bool"),
    ("epochs: null", "epochs: must be set"),
    ("lr: .nan", "lr: expected a finite number"),
    ("symmetric: 'yes'", "symmetric: expected true or false"),
    ("mix_share: 1.5", "mix_share: must be ≤ 1"),
    ("lora: {r: 0}", "lora.r: must be ≥ 1, got 0"),
    ("max_steps: 0", "max_steps: must be ≥ 1, got 0"),  # trained nothing and wrote final/ with exit 0
])
def test_bad_values_stop_with_one_line_naming_the_field(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        TrainConfig.from_dict(yaml.safe_load(text))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_shipped_configs_still_read() -> None:
    folder = Path(__file__).parents[2] / "src/umr/train/configs"
    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("mbeir/*.yaml"))
    assert len(paths) >= 15, f"the shipped configs moved? found {[p.name for p in paths]}"
    for path in paths:
        cfg = TrainConfig.from_yaml(path)
        # each names what it trains and on what
        assert cfg.model.model and (cfg.chain.stages or cfg.data.data), path.name


def test_truncated_trainer_state_on_resume_is_one_line(tiny_gme_dir, draw, tmp_path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = make_pairs(tmp_path / "data", draw)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": tiny_gme_dir, "data": str(data), "batch_size": 4, "max_steps": 2,
                                   "save_every": 1, "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(cfg)]) == 0
    state = tmp_path / "run" / "checkpoint-2" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:300])
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{state}: unreadable checkpoint" in err and "delete" in err and "Traceback" not in err


def test_non_utf8_pairs_file_names_its_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    good = b'{"query": "a red circle", "positive": "red"}\n'
    data.write_bytes(good * 3000 + b'{"query": "caf\xe9", "positive": "x"}\n')  # Latin-1, past the first block
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": "tiny:gme", "data": str(data), "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:3001: not UTF-8 text (byte 0xe9)" in err and "Traceback" not in err
