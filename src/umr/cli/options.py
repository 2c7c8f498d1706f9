"""Options several verbs share, so their names, defaults and help read the same everywhere."""

from __future__ import annotations

import argparse

DTYPES = ["auto", "fp32", "bf16", "fp16"]
DTYPE_HELP = "model dtype (default: bf16 on GPU, fp32 on CPU; auto: bf16 also on an AMX CPU)"


def add_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes preparing batches (images, processor, tokenizer) while the model runs "
                   "(default: 1 on CPU, up to 8 on a GPU; 0: in the main process; small jobs always use 0)")
