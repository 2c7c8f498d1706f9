"""Issue 31 probe: what would make a tiny yes/no judge (`umr.rerank.prompted.Reranker`) leave the ln 2 plateau?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/judge_plateau_probe.py --start tiny:u-marvel@128x4 \
        --train-vision --negatives other --hard-share 0.5 --hard-from 0.5 --steps 4000 --eval-every 1000 --val 2 3

examples/judge_probe.py trains judges with the library's loop (`umr.train.reranker`). This probe keeps its own
loop so that it can vary what that loop fixes, each a suspect for the plateau (docs/quality.md §7):
- `--init-std`: re-draw the LLM's matrices with this std (at 0.02 attention is nearly uniform, so the last token
  reads an average in which query and candidate only add up: no pair-dependent signal to follow);
- `--vision-from`: the vision tower of another checkpoint (the pretrained embedder's is aligned with its text);
- `--loss list`: LamRA's list-wise form, a softmax over (Yes − No) logits of the positive and `--k` negatives
  (what the candidates share cancels) instead of point-wise cross-entropy;
- `--negatives other`: another query's positive from the same set, so positives and negatives have the same
  distribution and only the *pair* tells them apart (random pool candidates let a judge learn what positives look
  like instead); `--hard-share` of the draws come from the embedder's top 20 from step `--hard-from`·steps on;
- `--lm-weight`: next-token loss on the positive prompts beside the yes/no loss (captioning-style pretraining: a
  dense signal that makes text positions read the image);
- `--copy-weight`: a list-wise KL from the embedder's softmax (τ `--copy-tau`) over each query's list to the
  judge's, so that the judge starts from the embedder's order (use with `--loss list`);
- `--hard-ramp`: the hard share grows linearly from 0 to `--hard-share` by step `--hard-from`·steps;
- `--text-only`: only pairs whose both sides are text;
- `--compact`: the prompt is only the query and the candidate, each on its line (no chat turn, system prompt,
  instruction or question), so query and candidate are a larger share of what each position averages.

Training data is the pretraining world (seed 1000, as the shipped bases): its train split's lists of random
pool candidates and of the pretrained embedder's top 20 (mined once into OUT). Evaluation is on validation worlds'
val split: each query's positive and the embedder's 9 best negatives. Reported: R@1 of the 10 by P(Yes) (chance
10 %), the AUC of positive against negative, the embedder's own R@1 of the 10, and R@1 after re-ranking the
embedder's top 5 by cos + P(Yes) (the demo's fusion). One JSON line per run goes to OUT/results.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from judge_probe import BASE, mined, world  # the sibling probe's worlds and lists (run from examples/)

from umr.mine.negatives import MineOptions
from umr.models.registry import load_embedder
from umr.rerank.prompted import Reranker
from umr.train.caption_judge import judge_optimiser, load_vision_tower
from umr.train.caption_judge import reinit_llm as reinit
from umr.train.data import Pair, read_pairs


class Draws:
    """Negatives for one training pair: hard (the embedder's top 20) with probability `hard_share` once hard
    negatives are on, else random pool candidates or another positive of the same set."""

    def __init__(self, out: Path, kind: str, hard_share: float, text_only: bool, seed: int = 0) -> None:
        rand_path = mined(out, "pre-random", world(out, 1000), "train", MineOptions(take=19, strategy="random"))
        hard_path = mined(out, "pre-hard", world(out, 1000), "train", MineOptions(top=20, take=19))
        sets = [json.loads(line)["set"] for line in rand_path.open()]
        hard = {p.query.id: p.negatives for p in read_pairs(hard_path)}
        rows = [(p, hard.get(p.query.id, []), s) for p, s in zip(read_pairs(rand_path), sets)]
        if text_only:
            rows = [r for r in rows if r[0].query.image is None and r[0].positive.image is None]
        self.rows, self.kind, self.hard_share = rows, kind, hard_share
        self.by_set: dict[str, list[Any]] = {}
        for p, _, s in rows:
            self.by_set.setdefault(s, []).append(p.positive)
        self.rng = random.Random(seed)
        self.hard_on = False

    def negative(self, row: tuple[Pair, list[Any], str]) -> Any:
        pair, hard, set_name = row
        if hard and self.hard_on and self.rng.random() < self.hard_share:
            return self.rng.choice(hard)
        if self.kind == "other":
            while (c := self.rng.choice(self.by_set[set_name])).id == pair.positive.id:
                pass
            return c
        return self.rng.choice(pair.negatives)


def compact_body(query: Any, candidate: Any, query_images: str, candidate_images: str) -> str:
    return f"{query_images}{query.text or ''}\n{candidate_images}{candidate.text or ''}\n"


def image_first_body(query: Any, candidate: Any, query_images: str, candidate_images: str) -> str:
    """compact_body with the candidate's line first when only the candidate has an image: every image then comes
    before the text it is judged against, the order a captioning judge read its captions in."""
    if candidate_images and not query_images:
        return compact_body(candidate, query, candidate_images, query_images)
    return compact_body(query, candidate, query_images, candidate_images)


def use_compact_prompt(rr: Reranker, image_first: bool = False) -> None:
    """The query and the candidate, each on its line: no chat turn, system prompt, instruction or question."""
    rr.template = "{body}"
    rr.style = dataclasses.replace(rr.style, body=image_first_body if image_first else compact_body)


def copy_vision(rr: Reranker, source: str) -> None:
    """Load the vision tower of checkpoint `source` into the judge (the rest of the judge is kept)."""
    load_vision_tower(rr.model, source)


EMBEDDER: list[Any] = []  # the embedder (cosines, --copy-weight's order), loaded once
VAL_LISTS: dict[int, tuple[list[Pair], list[np.ndarray]]] = {}  # seed → its val lists and their cosines


def embedder() -> Any:
    if not EMBEDDER:
        EMBEDDER.append(load_embedder(BASE, device="cpu"))
    return EMBEDDER[0]


def val_lists(out: Path, seed: int, n: int, text_only: bool) -> tuple[list[Pair], list[np.ndarray]]:
    """The val lists of world `seed` (the positive, then 9 hard negatives) and the embedder's cosines, built once."""
    if seed not in VAL_LISTS:
        pairs = read_pairs(mined(out, f"val{seed}-hard", world(out, seed), "val", MineOptions(top=10, take=9)))
        if text_only:
            pairs = [p for p in pairs if p.query.image is None and p.positive.image is None]
        pairs = pairs[::max(1, len(pairs) // n)][:n]
        emb = embedder()
        cosines = [(emb.encode_document([p.positive, *p.negatives[:9]]) @ emb.encode_query([p.query]).T).ravel()
                   for p in pairs]
        VAL_LISTS[seed] = (pairs, cosines)
    return VAL_LISTS[seed]


def losses(rr: Reranker, rows: list, draws: Draws, args: argparse.Namespace) -> tuple[torch.Tensor, float]:
    """The step's loss and its yes/no part (the LM part, when on, is the difference)."""
    k = args.k if args.loss == "list" else 1
    pairs = []
    for row in rows:  # each query's positive, then its k negatives
        pair = row[0]
        pairs += [(pair.query, c) for c in [pair.positive] + [draws.negative(row) for _ in range(k)]]
    batch = rr.prepare(pairs)
    hidden = rr.backbone.hidden_states(batch)
    yes_no = rr.answer_logits(hidden, batch["attention_mask"])
    if args.loss == "list":  # each query's positive first in its group of k + 1
        judge = F.cross_entropy((yes_no[:, 0] - yes_no[:, 1]).view(len(rows), k + 1),
                                torch.zeros(len(rows), dtype=torch.long))
    else:
        judge = F.cross_entropy(yes_no, torch.tensor([0, 1] * len(rows)))
    loss = judge
    if args.copy_weight:  # KL from the embedder's softmax over each query's list to the judge's (list-wise)
        with torch.no_grad():
            queries = torch.as_tensor(embedder().encode_query([row[0].query for row in rows]))
            cands = torch.as_tensor(embedder().encode_document([c for _, c in pairs]))
            cos = (cands.view(len(rows), k + 1, -1) * queries[:, None]).sum(-1)
            teacher = torch.softmax(cos / args.copy_tau, dim=-1)
        student = torch.log_softmax((yes_no[:, 0] - yes_no[:, 1]).view(len(rows), k + 1), dim=-1)
        loss = loss + args.copy_weight * F.kl_div(student, teacher, reduction="batchmean")
    if args.lm_weight:
        loss = loss + args.lm_weight * next_token_loss(rr, batch, hidden, torch.arange(0, len(pairs), k + 1))
    return loss, judge.item()


def next_token_loss(rr: Reranker, batch: dict[str, Any], hidden: torch.Tensor, rows: torch.Tensor,
                    reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over the text of prompts `rows` (image and padding positions left out)."""
    target = batch["input_ids"][rows, 1:].clone()
    keep = batch["attention_mask"][rows, 1:].bool() & (target != rr.model.config.image_token_id)
    target[~keep] = -100
    head = rr.model.get_output_embeddings().weight
    logits = hidden[rows, :-1] @ head.T
    return F.cross_entropy(logits.reshape(-1, head.shape[0]), target.reshape(-1), reduction=reduction)


def kind(item: Any) -> str:
    """An item's modality in M-BEIR's words: text, image or image,text."""
    return ",".join(m for m, on in (("image", item.image is not None), ("text", bool(item.text))) if on)


def evaluate(rr: Reranker, out: Path, seeds: list[int], n: int, text_only: bool) -> dict[str, Any]:
    result = {}
    rr.model.eval()
    for seed in seeds:
        pairs, cosines = val_lists(out, seed, n, text_only)
        r1, auc, emb_r1, fused_r1, by_kind = [], [], [], [], {}
        for p, cos in zip(pairs, cosines):
            yes = rr.score(p.query, [p.positive, *p.negatives[:9]])
            r1.append(yes[0] > yes[1:].max())
            auc.append((yes[0] > yes[1:]).mean() + 0.5 * (yes[0] == yes[1:]).mean())
            by_kind.setdefault(f"{kind(p.query)}->{kind(p.positive)}", []).append(auc[-1])
            emb_r1.append(cos[0] > cos[1:].max())
            top = np.argsort(-cos)[:5]
            fused_r1.append(top[np.argmax(cos[top] + yes[top])] == 0)
        result[f"world{seed}"] = {"r1_of_10": round(100 * float(np.mean(r1)), 1),
                                  "auc": round(float(np.mean(auc)), 3),
                                  "embedder_r1": round(100 * float(np.mean(emb_r1)), 1),
                                  "fused_top5_r1": round(100 * float(np.mean(fused_r1)), 1), "n": len(pairs),
                                  "auc_by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_kind.items())}}
    rr.model.train()
    return result


def optimiser(rr: Reranker, lr: float, steps: int, warmup: int, train_vision: bool) -> tuple[list, Any, Any]:
    """The vision tower frozen unless `train_vision`; AdamW with linear warm-up times a cosine decay to 0."""
    return judge_optimiser(rr.model, lr, steps, warmup, train_vision)


def finish(rr: Reranker, result: dict[str, Any], path: Path, save: Path | None) -> None:
    """Print the run's JSON line, append it to `path`, and write the judge to `save` when asked."""
    print(json.dumps(result))
    with path.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    if save:
        rr.model.eval()
        rr.save_pretrained(save)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default="tiny:u-marvel@64x2", help="the judge's start: tiny:<spec>[+pre] or a folder")
    ap.add_argument("--init-std", type=float, default=None)
    ap.add_argument("--vision-from", default=None)
    ap.add_argument("--train-vision", action="store_true")
    ap.add_argument("--loss", choices=["point", "list"], default="point")
    ap.add_argument("--k", type=int, default=3, help="negatives per query of the list-wise loss")
    ap.add_argument("--negatives", choices=["random", "other"], default="random")
    ap.add_argument("--hard-share", type=float, default=0.0)
    ap.add_argument("--hard-from", type=float, default=0.0, help="share of the steps before hard draws start")
    ap.add_argument("--hard-ramp", action="store_true", help="raise the hard share linearly up to --hard-from")
    ap.add_argument("--copy-weight", type=float, default=0.0, help="KL to the embedder's order over each list")
    ap.add_argument("--copy-tau", type=float, default=0.02, help="temperature of the embedder's softmax")
    ap.add_argument("--lm-weight", type=float, default=0.0)
    ap.add_argument("--text-only", action="store_true")
    ap.add_argument("--compact", action="store_true")
    ap.add_argument("--image-first", action="store_true", help="with --compact: the line with an image first (the"
                    " candidate's, for text-to-image), the order a captioning judge reads")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=8, help="queries a step")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--val", type=int, nargs="+", default=[2])
    ap.add_argument("--n-val", type=int, default=150)
    ap.add_argument("--attribute-weight", type=float, default=0.0, help="keep judge_attribute_probe's questions in "
                    "training (8 images a step, this loss weight) and score them at every evaluation")
    ap.add_argument("--attribute-named", type=int, nargs=2, default=(1, 1), metavar=("LO", "HI"),
                    help="those questions name LO..HI attributes in either order (judge_attribute_probe --named)")
    ap.add_argument("--save", type=Path, default=None, help="write the trained judge here")
    ap.add_argument("--out", type=Path, default=Path("runs/judge-plateau"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rr = Reranker(args.start, device="cpu", batch_size=20)
    if args.compact:
        use_compact_prompt(rr, args.image_first)
    if args.init_std:
        reinit(rr.model, args.init_std)
    if args.vision_from:
        copy_vision(rr, args.vision_from)
    params, opt, sched = optimiser(rr, args.lr, args.steps, args.warmup, args.train_vision)
    draws = Draws(args.out, args.negatives, args.hard_share, args.text_only)
    questions = []
    if args.attribute_weight:  # a sibling that imports this module: imported only when asked for
        from judge_attribute_probe import attribute_questions

        named = tuple(args.attribute_named)
        questions = attribute_questions(args.out, False if named == (1, 1) else None, named)
    rng = random.Random(0)
    start, judge_losses, evals, step = time.perf_counter(), [], {}, 0
    rr.model.train()
    while step < args.steps:
        order = list(range(len(draws.rows)))
        rng.shuffle(order)
        for at in range(0, len(order) - args.batch_size + 1, args.batch_size):
            if step >= args.steps:
                break
            draws.hard_on = step >= args.hard_from * args.steps
            if args.hard_ramp:  # the hard share grows linearly from 0 to --hard-share at --hard-from
                draws.hard_on = True
                draws.hard_share = args.hard_share * min(1.0, step / max(1.0, args.hard_from * args.steps))
            loss, judge = losses(rr, [draws.rows[i] for i in order[at:at + args.batch_size]], draws, args)
            if questions:
                loss = loss + args.attribute_weight * questions[0].loss(rr, 8, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            judge_losses.append(judge)
            if step % 100 == 0:
                print(f"step {step} judge loss {np.mean(judge_losses[-100:]):.4f}", flush=True)
            if args.eval_every and step % args.eval_every == 0:
                evals[step] = evaluate(rr, args.out, args.val, args.n_val, args.text_only)
                if questions:
                    evals[step]["attributes"] = questions[1].accuracy(rr)
                print(f"step {step} {json.dumps(evals[step])}", flush=True)
    result = {"args": {k: str(v) for k, v in vars(args).items()},
              "judge_loss_last_100": round(float(np.mean(judge_losses[-100:])), 4) if judge_losses else None,
              "train_s": round(time.perf_counter() - start), "evals": evals}
    if args.steps not in evals:
        result["final"] = evaluate(rr, args.out, args.val, args.n_val, args.text_only)
    finish(rr, result, args.out / "results.jsonl", args.save)


if __name__ == "__main__":
    main()
