"""Issue 31 probe: can a tiny yes/no judge answer one question about one attribute of an image?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/judge_attribute_probe.py --steps 3000 \
        [--image-first] [--train-vision] [--init-std 0.2] [--out runs/judge-plateau]

The easiest relevance a judge could be asked: the query is one attribute in the world's words ("red", "polka-dot",
"on the left", "on a beige background") and the candidate one image of the pretraining world (seed 1000). Each
image is asked once with its true value and once with another value of the same attribute, so Yes and No see the
same images and only the pair tells them apart. The judge is `umr.rerank.prompted.Reranker` with
judge_plateau_probe's compact prompt (query line, then candidate line), LLM from random weights and the pretrained
embedder's vision tower (a saved judge given as `--start` keeps its own; frozen unless `--train-vision`), trained
point-wise with AdamW, warm-up and cosine decay.

Every 1,000 steps it is scored on 200 images of validation world 2: per attribute, the share of images whose true
value gets a higher P(Yes) than a wrong one (chance 50 %). With background learned and nothing else, the loss sits
at 5/6 · ln 2 = 0.578. One JSON line per run goes to OUT/attribute-judge.jsonl; docs/quality.md §9 has the table.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from judge_plateau_probe import (  # sibling probes
    copy_vision,
    finish,
    next_token_loss,
    optimiser,
    reinit,
    use_compact_prompt,
)
from judge_probe import BASE, world
from vision_attribute_probe import ATTRIBUTES, labels, sample

from umr.data.world.attributes import PATTERN_WORDS, POSITION_WORDS, VALUES
from umr.items import Item
from umr.rerank.prompted import Reranker
from umr.train.caption_judge import optimizer_step, set_rope_theta


def words(attribute: str, value: str) -> str:
    """The value as the world's captions say it."""
    if attribute == "background":
        return f"on a {value} background"
    return {"pattern": PATTERN_WORDS, "position": POSITION_WORDS}.get(attribute, {}).get(value, value)


def description(attrs: dict[str, str]) -> str:
    """A caption naming only the given attributes, in the world's word order: "a large red shape on the left"."""
    noun = [attrs[a] if a != "pattern" else PATTERN_WORDS[attrs[a]] for a in ("size", "pattern", "colour")
            if a in attrs] + [attrs.get("shape", "shape")]
    where = [POSITION_WORDS[attrs["position"]]] if "position" in attrs else []
    ground = [f"on a {attrs['background']} background"] if "background" in attrs else []
    return " ".join(["a", *noun, *where, *ground])


class Questions:
    """Yes/no questions about images. `named` (lo, hi): each question names k attributes, k drawn from lo..hi, and
    the wrong one changes only the asked attribute (a minimal pair; (1, 1) is the single attribute in its word).
    `image_first` None draws the order per question, so that both the query-first and the candidate-first
    layouts of the relevance lists are seen."""

    def __init__(self, files: list[Path], image_first: bool | None, named: tuple[int, int] = (1, 1)) -> None:
        self.files, self.values, self.image_first, self.named = files, labels(files), image_first, named

    def pair(self, text: str, image: Path, image_first: bool) -> tuple[Item, Item]:
        question, picture = Item(text=text), Item(image=str(image))
        return (picture, question) if image_first else (question, picture)

    def ask(self, i: int, attribute: str, rng: random.Random) -> list[tuple[Item, Item]]:
        """The true value's pair, then a wrong value's."""
        true = self.values[attribute][i]
        wrong = rng.choice([v for v in VALUES[attribute] if v != true])
        first = rng.random() < 0.5 if self.image_first is None else self.image_first
        if self.named == (1, 1):
            return [self.pair(words(attribute, v), self.files[i], first) for v in (true, wrong)]
        shown = rng.sample([a for a in ATTRIBUTES if a != attribute], rng.randint(*self.named) - 1)
        context = {a: self.values[a][i] for a in shown}
        return [self.pair(description({**context, attribute: v}), self.files[i], first) for v in (true, wrong)]

    def loss(self, rr: Reranker, n: int, rng: random.Random, ask: tuple[str, ...] = ATTRIBUTES) -> torch.Tensor:
        """Point-wise yes/no loss over `n` random images, each asked one attribute twice (true, then wrong)."""
        pairs = [p for _ in range(n) for p in self.ask(rng.randrange(len(self.files)), rng.choice(ask), rng)]
        batch = rr.prepare(pairs)
        yes_no = rr.answer_logits(rr.backbone.hidden_states(batch), batch["attention_mask"])
        return F.cross_entropy(yes_no, torch.tensor([0, 1] * n))

    def caption_loss(self, rr: Reranker, n: int, rng: random.Random) -> torch.Tensor:
        """Captioning: next-token loss on the whole description of `n` random images, the image first (how
        real MLLMs learn to tie words to what they see, every attribute of every image a signal)."""
        picks = [rng.randrange(len(self.files)) for _ in range(n)]
        batch = rr.prepare([(Item(image=str(self.files[i])), Item(text=description(
            {a: self.values[a][i] for a in ATTRIBUTES}))) for i in picks])
        return next_token_loss(rr, batch, rr.backbone.hidden_states(batch), torch.arange(n))

    def likelihood_accuracy(self, rr: Reranker) -> dict[str, float]:
        """Per attribute, the share of images whose whole true description is likelier after the image than the
        description with that attribute changed: what captioning alone has tied to the image, no yes/no needed."""
        rr.model.eval()
        rng, right = random.Random(5), {a: [] for a in ATTRIBUTES}
        with torch.no_grad():
            for i in range(len(self.files)):
                true = {a: self.values[a][i] for a in ATTRIBUTES}
                for a in ATTRIBUTES:
                    wrong = {**true, a: rng.choice([v for v in VALUES[a] if v != true[a]])}
                    pairs = [(Item(image=str(self.files[i])), Item(text=description(d))) for d in (true, wrong)]
                    batch = rr.prepare(pairs)
                    hidden = rr.backbone.hidden_states(batch)
                    nll = [next_token_loss(rr, batch, hidden, torch.tensor([r]), "sum") for r in (0, 1)]
                    right[a].append(float(nll[0] < nll[1]))
        rr.model.train()
        return {a: round(100 * float(np.mean(v)), 1) for a, v in right.items()}

    def accuracy(self, rr: Reranker) -> dict[str, float]:
        """Per attribute, the share of images whose true value gets a higher P(Yes) than a wrong one."""
        rr.model.eval()
        rng, right = random.Random(5), {a: [] for a in ATTRIBUTES}
        for i in range(len(self.files)):
            for a in ATTRIBUTES:
                yes = rr.score_pairs(self.ask(i, a, rng))
                right[a].append(float(yes[0] > yes[1]))
        rr.model.train()
        return {a: round(100 * float(np.mean(v)), 1) for a, v in right.items()}


def attribute_questions(out: Path, image_first: bool | None = False,
                        named: tuple[int, int] = (1, 1)) -> tuple[Questions, Questions]:
    """The training questions (pretraining world) and the evaluation questions (200 images of world 2, naming
    `named`'s upper count of attributes)."""
    return (Questions(sample(world(out, 1000), 20_000, 0), image_first, named),
            Questions(sample(world(out, 2), 200, 1), image_first, (named[1], named[1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default="tiny:u-marvel@64x2", help="the judge's start: tiny:<spec>[+pre] or a folder")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16, help="images a step (each asked twice)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--image-first", action="store_true", help="the image, then the question (LLaVA's VQA order)")
    ap.add_argument("--mixed-order", action="store_true", help="either order, drawn per question")
    ap.add_argument("--named", type=int, nargs=2, default=(1, 1), metavar=("LO", "HI"),
                    help="each question names LO..HI attributes and the wrong one changes only the asked one "
                    "(evaluation names HI; 6 is the whole caption)")
    ap.add_argument("--train-vision", action="store_true")
    ap.add_argument("--init-std", type=float, default=None, help="re-draw the LLM's matrices with this std")
    ap.add_argument("--rope-theta", type=float, default=None, help="re-base the LLM's rotary frequencies (see "
                    "set_rope_theta; the tiny bases use Qwen2-VL's 1e6)")
    ap.add_argument("--ask", nargs="+", choices=ATTRIBUTES, default=list(ATTRIBUTES),
                    help="the attributes training asks about (evaluation asks all six)")
    ap.add_argument("--caption-weight", type=float, default=0.0, help="add captioning (next-token loss on the whole "
                    "description, image first) of --batch-size images a step, at this weight")
    ap.add_argument("--question-weight", type=float, default=1.0, help="the yes/no questions' weight (0: captioning"
                    " only, a captioning pretraining to give a later run as --start)")
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--likelihood", action="store_true", help="also score each attribute by the whole description's"
                    " likelihood after the image (what captioning learned)")
    ap.add_argument("--save", type=Path, default=None, help="write the trained judge here (a start for the relevance"
                    " training of judge_plateau_probe.py --start)")
    ap.add_argument("--out", type=Path, default=Path("runs/judge-plateau"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rr = Reranker(args.start, device="cpu", batch_size=32)
    use_compact_prompt(rr)
    if args.init_std:
        reinit(rr.model, args.init_std)
    if args.rope_theta:
        set_rope_theta(rr.model, args.rope_theta)
    if not Path(args.start).is_dir():  # a saved judge keeps its own tower (trained, with --train-vision)
        copy_vision(rr, BASE)
    params, opt, sched = optimiser(rr, args.lr, args.steps, 50, args.train_vision)
    train, val = attribute_questions(args.out, None if args.mixed_order else args.image_first, tuple(args.named))
    rng, losses, evals, start = random.Random(0), [], {}, time.perf_counter()
    rr.model.train()
    for step in range(1, args.steps + 1):
        loss = torch.zeros(())
        if args.question_weight:
            loss = args.question_weight * train.loss(rr, args.batch_size, rng, tuple(args.ask))
        if args.caption_weight:
            loss = loss + args.caption_weight * train.caption_loss(rr, args.batch_size, rng)
        losses.append(optimizer_step(loss, params, opt, sched))
        if step % args.eval_every == 0 or step == args.steps:
            evals[step] = {"loss_last_250": round(float(np.mean(losses[-250:])), 4),
                           **(val.accuracy(rr) if args.question_weight else {})}
            if args.likelihood:
                evals[step]["likelihood"] = val.likelihood_accuracy(rr)
            print(f"step {step} {json.dumps(evals[step])}", flush=True)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "train_s": round(time.perf_counter() - start),
              "evals": evals}
    finish(rr, result, args.out / "attribute-judge.jsonl", args.save)


if __name__ == "__main__":
    main()
