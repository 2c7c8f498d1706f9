"""`umr train-reranker`: point-wise LoRA training of an MLLM re-ranker on mined negatives (U-MARVEL)."""

from __future__ import annotations

import argparse
import os

from umr.cli.argtypes import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-reranker", help="train a point-wise Yes/No MLLM re-ranker on mined negatives",
        description="Each (query, positive) pair is a 'Yes' example and is paired with one negative drawn at random "
        "from the retriever's top-N (a `umr mine --take 100` file) as a 'No' example; the loss is cross-entropy "
        "over the Yes/No logits of the first answer token; LoRA on the LLM. The result loads with "
        "`--rerank N --reranker DIR` in `umr eval` / `umr search`.",
        epilog="example: umr train-reranker --model tiny:gme --data runs/top100.jsonl --out runs/reranker")
    p.add_argument("--model", required=True, help="Qwen2-VL / LLaVA-NeXT model: tiny:<recipe>, folder or hub id")
    p.add_argument("--data", required=True, help="mined pairs JSONL (umr mine --top 100 --take 100)")
    p.add_argument("--out", required=True, help="output folder (final/ is the merged re-ranker)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=8, help="positives per step (each adds one negative)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (0 = full fine-tuning)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default=None,
                   help="prompt style: umr (umr's own, the default) or lamra (LamRA-Rank's and U-MARVEL's official "
                   "prompt; docs/recipes.md); the judge records it. A captioning judge (tiny:judge@64x2+pre, style "
                   "caption) keeps its own style and is trained by captioning the positives; negatives are unused")
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.train.lora import LoraSpec
    from umr.train.reranker import RerankTrainConfig, train_reranker

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lora = LoraSpec(r=args.lora_r, alpha=2 * args.lora_r, dropout=0.0) if args.lora_r > 0 else None
    cfg = RerankTrainConfig(model=args.model, data=args.data, output_dir=args.out, lora=lora, lr=args.lr,
                            epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed,
                            device=args.device, style=args.style)
    final = train_reranker(cfg)
    print(f"wrote {final}")
    return 0
