"""Ties: `umr eval` agrees with an independent transcription of UniIR's recall computation (hit-rate Recall@k
averaged over the queries; TIGER-AI-Lab/UniIR src/common/mbeir_retriever.py) on a fixture with exact ties, under
the documented rule: among equal scores the candidate earlier in the pool ranks higher (a stable sort on
descending score). UniIR takes its ranked lists from FAISS, whose tie order is not that rule (faiss 1.15 CPU flat
inner-product search returns ties latest-first: checked below), so the lists here come from a stable sort."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
import torch

from umr.cli import main
from umr.data.mbeir import read_pool, read_queries
from umr.eval.mbeir import EvalOptions, evaluate
from umr.models.base import Embedder

COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "teal": (0, 1, 1)}


class ExactColours(Embedder):
    """3-d colour vectors (a text's colour words, an image's mean RGB) with no offset: zero products are exact,
    so ties are exact (tests/eval/conftest.py's ColourEmbedder adds 1e-12, which breaks them)."""

    name = "exact-colour"

    @property
    def dim(self) -> int:
        return 3

    def prepare(self, items):
        return list(items)

    def forward(self, batch):
        rows = []
        for it in batch:
            if it.image is not None:
                v = np.asarray(it.load_image(), dtype=np.float64).reshape(-1, 3).mean(0) / 255.0
            else:
                v = np.sum([COLOURS[w] for w in (it.text or "").lower().split() if w in COLOURS], 0)
            rows.append(np.asarray(v, dtype=np.float64))
        return torch.tensor(np.stack(rows), dtype=torch.float32)


# -- UniIR's recall, transcribed (not imported), over lists ranked by the documented rule ------------------------
def _uniir_recall_at_k(relevant_docs, retrieved, k):
    if not relevant_docs:
        return 0.0
    return 1.0 if set(relevant_docs) & set(retrieved[:k]) else 0.0


def _uniir_recall(embed, root, pool_file, query_file, qrels_file, ks):
    cands = read_pool(pool_file, root)
    emb = np.asarray(embed([c.to_item(root) for c in cands]), dtype=np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    qrel = {}
    for line in qrels_file.read_text().splitlines():
        qid, _, did, rel, _task = line.strip().split()
        if int(rel) > 0:
            qrel.setdefault(qid, []).append(did)
    queries = read_queries(query_file, root)
    q = np.asarray(embed([x.to_item(root) for x in queries]), dtype=np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores = np.round(q @ emb.T, 6)  # the fixture's ties are exact; rounding keeps float noise out of them
    out = {}
    for k in ks:
        hits = []
        for x, row in zip(queries, scores):
            retrieved = [cands[i].did for i in np.argsort(-row, kind="stable")]
            hits.append(_uniir_recall_at_k(qrel[x.qid], retrieved, k))
        out[k] = sum(hits) / len(hits)
    return out


def _embed(model):
    return lambda items: model.forward(items).numpy()


def test_faiss_flat_ip_does_not_order_ties_by_pool():
    index = faiss.IndexFlatIP(2)
    index.add(np.tile(np.array([[1.0, 0.0]], dtype="float32"), (4, 1)))
    _, ids = index.search(np.array([[1.0, 0.0]], dtype="float32"), 4)
    assert ids[0].tolist() != [0, 1, 2, 3]  # so umr re-orders the retrieved list itself


@pytest.mark.parametrize("ks,bias_k", [((1, 3, 4), 1), ((1, 2, 4, 5), 10)])
def test_ties_at_the_retrieval_cut(mbeir_mini, ks, bias_k):
    """With k = 4 < pool size, FAISS keeps some of the candidates tied at the cut; umr adds the rest."""
    model = ExactColours()
    opts = EvalOptions(pool="local", ks=ks, tasks=["mscoco"], bias_k=bias_k)
    ours = evaluate(model, mbeir_mini, opts).results[0].metrics.recall
    pool_file = mbeir_mini / "cand_pool/local/mbeir_mscoco_task0_test_cand_pool.jsonl"
    assert ours == pytest.approx(_uniir_recall(_embed(model), mbeir_mini, pool_file,
                                               mbeir_mini / "query/test/mbeir_mscoco_task0_test.jsonl",
                                               mbeir_mini / "qrels/test/mbeir_mscoco_task0_test_qrels.txt", ks))


@pytest.mark.parametrize("pool", ["local", "global"])
def test_umr_eval_agrees_with_uniir_on_ties(mbeir_mini, pool):
    model = ExactColours()
    ks = (1, 2, 4, 5)
    report = evaluate(model, mbeir_mini, EvalOptions(pool=pool, ks=ks, tasks=["mscoco"]))
    ours = report.results[0]
    pool_file = mbeir_mini / ("cand_pool/local/mbeir_mscoco_task0_test_cand_pool.jsonl" if pool == "local"
                              else "cand_pool/global/mbeir_union_test_cand_pool.jsonl")
    theirs = _uniir_recall(_embed(model), mbeir_mini, pool_file,
                           mbeir_mini / "query/test/mbeir_mscoco_task0_test.jsonl",
                           mbeir_mini / "qrels/test/mbeir_mscoco_task0_test_qrels.txt", ks)
    assert ours.metrics.recall == pytest.approx(theirs)
    # "a blue square" → its positive (green, score 0) ties with red and yellow (local) and with both passages
    # (global); pool order puts the earlier ones first: rank 4 locally (blue, teal, red), 6 globally
    assert ours.metrics.recall[4 if pool == "local" else 5] == (0.75 if pool == "local" else 0.5)
    pessimistic = evaluate(model, mbeir_mini, EvalOptions(pool=pool, ks=ks, tasks=["mscoco"], ties="pessimistic"))
    assert pessimistic.results[0].metrics == ours.alt_metrics  # each run keeps the other rule's numbers
    assert pessimistic.results[0].alt_metrics == ours.metrics
    assert ours.metrics.mrr10 == pytest.approx((1 + 1 + 1 / 4) / 4 if pool == "local" else (1 / 2 + 1 + 1 / 6) / 4)
    assert ours.alt_metrics.mrr10 == pytest.approx((1 + 1 + 1 / 5) / 4 if pool == "local" else (1 / 2 + 1 + 1 / 7) / 4)
    if pool == "local":
        assert ours.metrics.recall[4] == 0.75 and ours.alt_metrics.recall[4] == 0.5


def test_cli_reports_both_tie_rules_where_they_differ(mbeir_mini, tmp_path, monkeypatch, capsys):
    from umr.models import registry

    monkeypatch.setattr(registry, "load_embedder", lambda *a, **k: ExactColours())
    out = tmp_path / "run"
    assert main(["eval", "--model", "m", "--data", str(mbeir_mini), "--out", str(out), "--k", "1", "4", "5",
                 "--tasks", "mscoco", "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "ties: mscoco_task0 R@5 75.0 (pool-order), 75.0 (pessimistic); MRR@10 56.2 vs 55.0" in printed
    row = json.loads((out / "results.json").read_text())["results"][0]
    assert row["recall"]["4"] == 0.75 and row["other_ties"]["recall"]["4"] == 0.5
    assert main(["eval", "--model", "m", "--data", str(mbeir_mini), "--out", str(out), "--k", "4",
                 "--tasks", "mscoco", "--no-cache", "--ties", "pessimistic"]) == 0
    assert json.loads((out / "results.json").read_text())["results"][0]["recall"]["4"] == 0.5
