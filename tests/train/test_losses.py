"""InfoNCE against hand computations: plain, hard-negative columns (shared and own), symmetric, learnable τ."""

from __future__ import annotations

import math

import pytest
import torch

from umr.train.losses import InfoNCELoss, gather_with_grad, info_nce


def unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(unit(a), unit(b)))


def ce(scores: list[float], target: int) -> float:
    """-log softmax(scores)[target], written out."""
    return -scores[target] + math.log(sum(math.exp(s) for s in scores))


Q = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
P = [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
N = [[[0.0, 0.0, 3.0]], [[1.0, 0.0, 1.0]]]  # one hard negative per query


def test_plain_infonce_matches_hand() -> None:
    tau = 0.1
    want = sum(ce([cos(Q[i], P[j]) / tau for j in range(2)], i) for i in range(2)) / 2
    got = info_nce(torch.tensor(Q), torch.tensor(P), temperature=tau)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_hard_negatives_are_extra_columns() -> None:
    tau = 0.5
    flat_n = [N[0][0], N[1][0]]
    shared = sum(ce([cos(Q[i], c) / tau for c in [*P, *flat_n]], i) for i in range(2)) / 2
    own = sum(ce([cos(Q[i], c) / tau for c in [*P, N[i][0]]], i) for i in range(2)) / 2
    q, p, n = torch.tensor(Q), torch.tensor(P), torch.tensor(N)
    assert info_nce(q, p, n, temperature=tau).item() == pytest.approx(shared, rel=1e-5)
    assert info_nce(q, p, n, temperature=tau, share_negatives=False).item() == pytest.approx(own, rel=1e-5)
    # a negative identical to the positive must raise the loss over the no-negative case
    assert info_nce(q, p, p[:, None], temperature=tau) > info_nce(q, p, temperature=tau)


Q3 = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]]
P3 = [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.5, 0.0, 1.0]]


def test_symmetric_averages_both_directions() -> None:
    tau = 0.2
    fwd = sum(ce([cos(Q3[i], P3[j]) / tau for j in range(3)], i) for i in range(3)) / 3
    back = sum(ce([cos(P3[i], Q3[j]) / tau for j in range(3)], i) for i in range(3)) / 3
    got = info_nce(torch.tensor(Q3), torch.tensor(P3), temperature=tau, symmetric=True)
    assert got.item() == pytest.approx((fwd + back) / 2, rel=1e-5)
    assert fwd != pytest.approx(back)  # the two directions differ here, so the average is a real check


def test_learnable_tau_init_gradient_and_hand_value() -> None:
    loss_fn = InfoNCELoss(temperature=0.05, learnable=True)
    assert loss_fn.tau.item() == pytest.approx(0.05, rel=1e-6)
    assert [n for n, p in loss_fn.named_parameters() if p.requires_grad] == ["log_scale"]
    q, p = torch.tensor(Q3, requires_grad=True), torch.tensor(P3)
    loss = loss_fn(q, p)
    want = sum(ce([cos(Q3[i], P3[j]) / 0.05 for j in range(3)], i) for i in range(3)) / 3
    assert loss.item() == pytest.approx(want, rel=1e-5)
    loss.backward()
    # τ's gradient against a central finite difference of the loss in log(1/τ)
    eps = 1e-3
    with torch.no_grad():
        loss_fn.log_scale += eps
        up = loss_fn(q, p).item()
        loss_fn.log_scale -= 2 * eps
        down = loss_fn(q, p).item()
    fd = (up - down) / (2 * eps)
    assert abs(fd) > 1e-2  # not a saturated corner where any gradient would pass
    assert loss_fn.log_scale.grad.item() == pytest.approx(fd, rel=1e-2)  # float32 differences
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_fixed_tau_has_no_parameters_and_validates() -> None:
    assert list(InfoNCELoss(0.05).parameters()) == []
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)
    with pytest.raises(ValueError, match="must match"):
        info_nce(torch.zeros(2, 3), torch.zeros(3, 3))


def test_gather_is_identity_without_distributed() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert gather_with_grad(x) is x


@pytest.mark.parametrize("share", [True, False])
def test_hard_weight_counts_each_hard_negative_as_w_negatives(share: bool) -> None:
    """log w on every hard column equals w copies of each hard negative; the in-batch columns keep weight 1."""
    tau, w = 0.5, 0.3
    want = 0.0
    for i in range(2):
        in_batch = [math.exp(cos(Q[i], P[j]) / tau) for j in range(2)]
        hard = [N[r][0] for r in range(2)] if share else [N[i][0]]
        denom = sum(in_batch) + w * sum(math.exp(cos(Q[i], n) / tau) for n in hard)
        want += (-cos(Q[i], P[i]) / tau + math.log(denom)) / 2
    loss = InfoNCELoss(tau, share_negatives=share, hard_weight=w)
    got = loss(torch.tensor(Q), torch.tensor(P), torch.tensor(N))
    assert got.item() == pytest.approx(want, rel=1e-5)
    plain = info_nce(torch.tensor(Q), torch.tensor(P), torch.tensor(N), temperature=tau, share_negatives=share)
    assert got.item() < plain.item()  # a softer push: less mass on the hard columns
    with pytest.raises(Exception, match="hard_weight must be > 0"):
        info_nce(torch.tensor(Q), torch.tensor(P), torch.tensor(N), hard_weight=0.0)
