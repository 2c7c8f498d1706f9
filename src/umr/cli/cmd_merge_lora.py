"""`umr merge-lora`: fold a trained LoRA adapter into its base model → a plain folder `load_embedder` reads."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge-lora", help="merge a LoRA adapter into its base model (a folder load_embedder reads)",
        description="Merge the LoRA adapter written by `umr train` (OUTPUT_DIR/adapter) into its base model and "
        "save a complete Hugging Face folder plus umr_recipe.json at --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("adapter", type=Path, help="adapter folder (adapter_config.json, umr_train.json)")
    p.add_argument("--out", required=True, type=Path, help="output folder for the merged model")
    p.add_argument("--base", default=None, help="base model folder (default: the one recorded in umr_train.json)")
    p.add_argument("--device", default="cpu", help="where to merge (cpu needs no GPU memory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.train.lora import merge_adapter

    if args.out.exists() and any(args.out.iterdir()):
        raise FileExistsError(f"{args.out} exists and is not empty; choose a new --out")
    out = merge_adapter(args.adapter, args.out, base=args.base, device=args.device)
    print(f"merged model written to {out}")
    return 0
