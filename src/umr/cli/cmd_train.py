"""`umr train`: contrastive training of an embedder from a YAML config (single run or a chain of stages)."""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from umr.cli.argtypes import positive_int
from umr.errors import UmrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an embedder (InfoNCE, LoRA or full, GradCache, stages) from a YAML config",
        description="Train from a YAML TrainConfig (see src/umr/train/configs/). Writes OUTPUT_DIR/log.jsonl, "
        "checkpoint-N/ every save_every steps and final/ (a folder load_embedder reads). With `stages:`, each "
        "stage trains on top of the previous one's merged model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="training config YAML")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUTPUT_DIR")
    p.add_argument("--output-dir", default=None, help="override the config's output_dir")
    p.add_argument("--data", default=None, help="override the config's data file")
    p.add_argument("--max-steps", type=positive_int, default=None, help="override max_steps (smoke runs)")
    p.add_argument("--device", default=None, help="override device (cpu, cuda, cuda:1 …)")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config fields, VALUE read as YAML (model=tiny:gme max_steps=2 lr=1e-4 "
                   "deepspeed=null lora.r=8) at the top level; stages.NAME.KEY=VALUE for one stage, "
                   "stages.*.KEY=VALUE for every stage that sets KEY")
    p.set_defaults(func=run)


def _value(text: str) -> Any:
    """A --set value: YAML (numbers, true/false, null, [lists], {maps}); '1e-4', which YAML 1.1 reads as a
    string, becomes a float."""
    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


def _assign(target: dict[str, Any], keys: list[str], value: Any) -> None:
    """target[k1][k2]… = value, creating the mappings on the way."""
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def _stage_targets(stages: list[dict[str, Any]], selector: str, keys: list[str], item: str) -> list[dict[str, Any]]:
    """The stages `stages.SELECTOR.…` names: one by name (or index), or `*` = every stage that sets keys[0]."""
    if selector == "*":
        hit = [st for st in stages if keys[0] in st]
        if not hit:
            raise UmrError(f"--set {item}: no stage sets {keys[0]!r}; set it at the top level ({'.'.join(keys)}=…)")
        return hit
    for i, stage in enumerate(stages):
        if selector in (str(stage.get("name", i)), str(i)):
            return [stage]
    names = ", ".join(str(st.get("name", i)) for i, st in enumerate(stages)) or "none"
    raise UmrError(f"--set {item}: no stage named {selector!r} (stages: {names})")


def apply_overrides(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """The raw config mapping with KEY=VALUE assignments applied, following the config's own structure.

    `lr=1e-4` and `lora.r=8` change the top level only, which every stage inherits unless it sets the key
    itself; `stages.hard.lr=1e-5` changes one stage (by name or index) and `stages.*.batch_size=4` every stage
    that sets the key. An override that would never reach a stage is refused or reported, never silently
    spread: replacing `data` in every stage once made U-MARVEL's NLI and CC3M stages train on the M-BEIR root."""
    raw = copy.deepcopy(raw)
    stages = [st for st in raw.get("stages") or [] if isinstance(st, dict)]
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UmrError(f"--set expects KEY=VALUE, got {item!r}")
        keys, value = key.strip().split("."), _value(text)
        if keys[0] == "stages":
            if len(keys) < 3:
                raise UmrError(f"--set {item}: name a stage and a key (stages.NAME.KEY=VALUE); edit the file to "
                               "change the list of stages")
            for stage in _stage_targets(stages, keys[1], keys[2:], item):
                _assign(stage, keys[2:], value)
            continue
        setters = [str(st.get("name", i)) for i, st in enumerate(stages) if keys[0] in st]
        if len(keys) > 1 and keys[0] not in raw and setters:
            raise UmrError(f"--set {item}: only stage(s) {', '.join(setters)} set {keys[0]!r}; name one "
                           f"(stages.{setters[0]}.{key.strip()}=…) or all of them (stages.*.{key.strip()}=…)")
        _assign(raw, keys, value)
        if setters:
            print(f"note: --set {key.strip()} changes the top level; stage(s) {', '.join(setters)} keep their own "
                  f"{keys[0]} (stages.*.{key.strip()}=… changes them too)", file=sys.stderr)
    return raw


def run(args: argparse.Namespace) -> int:
    from umr.train.config import TrainConfig
    from umr.train.stages import make_trainer

    raw = yaml.safe_load(Path(args.config).read_text()) or {}
    if not isinstance(raw, dict):
        raise UmrError(f"{args.config}: a training config is a YAML mapping")
    # the flags override the top level last, as flat keys, so the config's own checks see them too
    flags = {key: getattr(args, key) for key in ("output_dir", "data", "max_steps", "device")
             if getattr(args, key) is not None}
    config = TrainConfig.from_dict({**apply_overrides(raw, args.overrides), **flags})
    if config.chain.stages:
        from umr.train.stages import run_stages

        final = run_stages(config, resume=args.resume)
    else:
        trainer = make_trainer(config)
        summary = trainer.fit(resume=args.resume)
        final = trainer.save_final()
        print(f"{summary['steps']} steps, loss {summary['first_loss']} → {summary['last_loss']}, "
              f"τ {summary['tau']:.4f}, {summary['samples_per_s']:.1f} samples/s")
    print(f"model written to {final}")
    return 0
