"""Distillation: the KL loss equals a hand computation, τ gets no gradient, no in-batch negatives; the `distill`
stage type trains from a teacher file; the continual-text mixing option draws the asked share."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.continual import mix_pairs
from umr.train.data import Pair
from umr.train.distill import distill_kl, distill_loss, read_distill
from umr.train.stages import make_trainer


def test_kl_equals_hand_computation() -> None:
    student = torch.tensor([[0.2, 0.1, -0.3]])
    teacher = torch.tensor([[1.0, 0.5, 0.2]])
    tau = 0.5
    # softmax(teacher / 0.5) over exp(2), exp(1), exp(0.4); softmax(student / 0.5) over exp(0.4), exp(0.2), exp(-0.6)
    zt = math.exp(2.0) + math.exp(1.0) + math.exp(0.4)
    zs = math.exp(0.4) + math.exp(0.2) + math.exp(-0.6)
    pt = [math.exp(2.0) / zt, math.exp(1.0) / zt, math.exp(0.4) / zt]
    ps = [math.exp(0.4) / zs, math.exp(0.2) / zs, math.exp(-0.6) / zs]
    want = sum(a * math.log(a / b) for a, b in zip(pt, ps))
    assert distill_kl(student, teacher, tau).item() == pytest.approx(want, rel=1e-5)
    # two rows: the mean of the per-row KLs; equal distributions cost 0
    both = distill_kl(torch.cat([student, teacher]), torch.cat([teacher, teacher]), tau)
    assert both.item() == pytest.approx(want / 2, rel=1e-5)


def test_hard_label_term_adds_cross_entropy_on_the_positive() -> None:
    # unit vectors at chosen cosines: query e0, candidates with cos 0.6 / 0.8 / 0.0 to it
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    c = torch.tensor([[[0.6, 0.8], [0.8, 0.6], [0.0, 1.0]]] * 2)
    teacher = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    tau = 0.5
    kl = distill_loss(q, c, teacher, tau)
    positive = torch.tensor([0, -100])  # second row: positive not in its list → no hard term for it
    both = distill_loss(q, c, teacher, tau, positive, hard_weight=2.0)
    # CE for row 0 with target 0: -log(exp(1.2) / (exp(1.2) + exp(1.6) + exp(0))), averaged over counted rows
    ce = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6) + 1.0))
    assert both.item() == pytest.approx(kl.item() + 2.0 * ce, rel=1e-5)
    assert distill_loss(q, c, teacher, tau, positive, hard_weight=0.0).item() == pytest.approx(kl.item())


def test_in_batch_hard_label_term_counts_the_other_lists() -> None:
    # row 0's list: cos 0.6 (positive), 0.8; row 1's list: cos 0.0, -0.6 to query 0 (query 1 = e1)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[[0.6, 0.8], [0.8, 0.6]], [[0.0, 1.0], [-0.6, 0.8]]])
    teacher = torch.zeros(2, 2)
    tau = 0.5
    positive = torch.tensor([0, -100])
    kl = distill_loss(q, c, teacher, tau)
    got = distill_loss(q, c, teacher, tau, positive, hard_weight=1.0, in_batch=True)
    # CE of row 0 over all four candidates, target its own first: logits 1.2, 1.6, 0.0, -1.2
    ce = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6) + 1.0 + math.exp(-1.2)))
    assert got.item() == pytest.approx(kl.item() + ce, rel=1e-5)
    # row 1's positive at index 1 maps to column 1·2 + 1 = 3 of the batch
    got1 = distill_loss(q, c, teacher, tau, torch.tensor([-100, 1]), hard_weight=1.0, in_batch=True)
    ce1 = -math.log(math.exp(1.6) / (math.exp(1.6) + math.exp(1.2) + math.exp(2.0) + math.exp(1.6)))
    assert got1.item() == pytest.approx(kl.item() + ce1, rel=1e-5)


def test_tau_is_detached_and_only_own_candidates_count() -> None:
    tau = torch.tensor(0.05, requires_grad=True)
    q = torch.randn(2, 8, requires_grad=True)
    cands = torch.randn(2, 3, 8)
    teacher = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.2, 1.0]])
    loss = distill_loss(q, cands, teacher, tau)
    loss.backward()
    assert tau.grad is None and q.grad is not None
    # query 0's loss ignores query 1's candidates: changing them leaves row 0's gradient unchanged
    g0 = q.grad[0].clone()
    q.grad = None
    cands2 = cands.clone()
    cands2[1] = torch.randn(3, 8)
    distill_loss(q, cands2, teacher, tau).backward()
    torch.testing.assert_close(q.grad[0], g0)


def test_mix_pairs_share() -> None:
    main = [Pair(Item(text=f"t{i}"), Item(text=f"p{i}")) for i in range(30)]
    extra = [Pair(Item(text=f"m{i}"), Item(text=f"n{i}")) for i in range(50)]
    mixed = mix_pairs(main, extra, 0.25, seed=1)
    assert len(mixed) == 40 and sum(p.query.text.startswith("m") for p in mixed) == 10  # 10 / 40 = 25 %
    assert mix_pairs(main, extra, 0.25, seed=1) == mixed  # deterministic (resume sees the same data)
    assert len(mix_pairs(main, extra[:3], 0.5)) == 33  # capped by what exists
    with pytest.raises(ValueError):
        mix_pairs(main, extra, 1.0)


def _teacher_file(path: Path, draw) -> Path:
    colours = ["red", "green", "blue", "yellow", "purple", "black"]
    img_dir = path.parent / "img"
    img_dir.mkdir(exist_ok=True)
    for c in colours:
        draw(c).save(img_dir / f"{c}.png")
    with path.open("w") as fh:
        for i, c in enumerate(colours):
            cands = [c] + [colours[(i + j) % 6] for j in (1, 2, 3)]
            fh.write(json.dumps({"qid": f"q{i}", "query": {"text": f"a {c} circle"},
                                 "candidates": [{"image": f"img/{x}.png"} for x in cands],
                                 "teacher": [1.5, 0.2, 0.1, 0.0]}) + "\n")
    return path


def test_distill_stage_trains_toward_teacher(tiny_gme_dir: str, tmp_path: Path, draw) -> None:
    data = _teacher_file(tmp_path / "teacher.jsonl", draw)
    rows = read_distill(data)
    assert len(rows) == 6 and rows[0].candidates[0].image.endswith("img/red.png")
    cfg = TrainConfig.of(model=tiny_gme_dir, type="distill", data=str(data), output_dir=str(tmp_path / "run"),
                      batch_size=3, max_steps=6, epochs=3, lr=2e-3, distill_temperature=0.1, micro_batch_size=2,
                      device="cpu")
    assert TrainConfig.from_dict(cfg.to_dict()).type == "distill"
    trainer = make_trainer(cfg)
    assert type(trainer).__name__ == "DistillTrainer"
    batches = trainer.epoch_batches(0)

    def mean_loss() -> float:
        with torch.no_grad():
            vals = []
            for b in batches:
                q = trainer.embedder.embed(b.queries)
                c = trainer.embedder.embed([x for row in b.candidates for x in row]).reshape(len(b.queries), 4, -1)
                vals.append(distill_loss(q, c, b.teacher, 0.1).item())
            return sum(vals) / len(vals)

    before = mean_loss()
    summary = trainer.fit()
    assert summary["steps"] == 6
    assert mean_loss() < before  # the student's distribution moved toward the teacher's


def test_unknown_stage_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="type"):
        TrainConfig.from_dict({"type": "dpo"})


def test_distill_refuses_task_batches_before_loading_anything() -> None:
    """Its batches are whole teacher lists; `batch_by: task` used to be ignored without a word."""
    with pytest.raises(ValueError, match="batch_by: task does not apply to a distill stage"):
        make_trainer(TrainConfig.of(type="distill", batch_by="task", data="no-such-teacher.jsonl"))
