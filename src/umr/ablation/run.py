"""`run_ablation`: the issue-6 ablation table, top to bottom. Every stage starts from the same base model and runs
the same number of steps; every number is measured on the world's test split.

  (a) global-pool wrong-modality share (top-10) after a stage with random vs modality-aware mined negatives;
  (b) mean R@5 (local pools): in-batch negatives only vs + mined hard negatives, without / with the FN filter;
  (c) R@5 on the composed tasks (task 7) before / after re-ranking the top-N with a point-wise trained re-ranker;
  (d) mean R@5 before / after a distillation stage (teacher: cos + w·P(Yes) over each train query's top-N);
  (e) text-task (task 1) and multimodal-task R@5 before / after continual text fine-tuning.
"""

from __future__ import annotations

import time
from typing import Any

from umr.ablation.config import AblationConfig
from umr.ablation.measures import (
    Row,
    is_text_task,
    mean_recall,
    print_table,
    query_counts,
    resolution,
    write_table,
    wrong_modality,
)
from umr.ablation.workspace import Workspace


def fn_rule(cfg: AblationConfig) -> str:
    """The FN arm's rule as the table names it."""
    return f"skip top {cfg.fn_skip}" if cfg.fn_skip else f"ratio {cfg.fn_ratio}"


def _is_mm(r: dict[str, Any]) -> bool:
    return not is_text_task(r)


def _base_model(ws: Workspace, data_root: str) -> str:
    """The given base, or a base stage trained here as world-small-gme.yaml's first stage (full FT, vision on)."""
    cfg = ws.cfg
    if cfg.base is not None:
        return str(cfg.base)
    return ws.train("base", "tiny:gme", data_root, cfg.base_steps, batch_size=cfg.base_batch_size, lr=1e-3,
                    symmetric=True, train_vision=True, warmup_steps=min(20, cfg.base_steps // 5),
                    learn_temperature=True)


def _teacher(ws: Workspace, retriever: str, reranker: str) -> str:
    """Teacher lists (umr.train.distill.build_teacher) for the first `teacher_queries` train queries of each set."""
    from umr.models.registry import load_embedder
    from umr.rerank.prompted import Reranker
    from umr.train.distill import build_teacher

    path, done = ws.out / "teacher.jsonl", ws.out / "teacher.done"
    if not done.is_file():
        start = time.perf_counter()
        ws.log(f"building the distillation teacher (top-{ws.cfg.rerank}, {ws.cfg.teacher_queries} queries a set) …")
        s = build_teacher(load_embedder(retriever, device=ws.cfg.device), ws.world, path,
                          reranker=Reranker(reranker, device=ws.cfg.device), weight=ws.cfg.fuse_weight,
                          top=ws.cfg.rerank, pool="local", cache_dir=ws.out / "cache" / "teacher",
                          max_per_set=ws.cfg.teacher_queries)
        done.write_text(f"{s}\n")
        ws.timed("teacher", start)
    return str(path)


def run_ablation(cfg: AblationConfig, console: Any = None) -> list[Row]:  # one linear recipe
    """Run (or resume) the ablation in cfg.out; returns the rows and writes ablation.json / ablation.md."""
    from umr.mine.negatives import MineOptions
    from umr.models.baselines import RandomEmbedder
    from umr.models.registry import load_embedder

    ws = Workspace(cfg, console)
    t0 = time.perf_counter()
    k, seed = cfg.negatives, cfg.seed

    # -- data that needs no model: random negatives (baseline, base-stage and mixing data), text pairs ----------
    rnd = ws.pairs("random-neg", RandomEmbedder(), "random", pool="global",
                   opts=MineOptions(take=k, strategy="random", seed=seed))
    text = ws.pairs("text-random-neg", RandomEmbedder(), "random", pool="local", tasks=["task1"],
                    opts=MineOptions(take=k, strategy="random", seed=seed))
    base = _base_model(ws, str(ws.world))

    # -- hard negatives mined with the base model (one embedding cache for all four files) ----------------------
    base_emb = load_embedder(base, device=cfg.device)
    hard = ws.pairs("hard", base_emb, "base", pool="local", opts=MineOptions(top=cfg.top, take=k))
    fn_opts = {"fn_skip": cfg.fn_skip} if cfg.fn_skip else {"fn_ratio": cfg.fn_ratio}
    hard_fn = ws.pairs("hard-fn", base_emb, "base", pool="local", opts=MineOptions(top=cfg.top, take=k, **fn_opts))
    mod = ws.pairs("modality-aware", base_emb, "base", pool="global",
                   opts=MineOptions(top=cfg.top, take=k, modality_aware=True))
    top_n = ws.pairs("top-n", base_emb, "base", pool="local", opts=MineOptions(top=cfg.top, take=20))
    del base_emb

    rows: list[Row] = []
    rep_base = ws.evaluate("base", base)
    n_all = resolution(query_counts(rep_base))
    rows.append(Row("-", "base model mean R@5 (local pools)", mean_recall(rep_base), n_all, "base"))

    # (a) random vs modality-aware negatives, judged on the global pool
    m_rnd = ws.train("random-neg", base, rnd, cfg.steps, num_negatives=k)
    m_mod = ws.train("modality-aware", base, mod, cfg.steps, num_negatives=k)
    g_rnd, g_mod = ws.evaluate("random-neg-global", m_rnd, "global"), ws.evaluate("modality-aware-global", m_mod,
                                                                                 "global")
    rows += [Row("a", "global wrong-modality % (top-10), random negatives", wrong_modality(g_rnd),
                 n_all, "a:wrong:random"),
             Row("a", "global wrong-modality % (top-10), modality-aware negatives", wrong_modality(g_mod),
                 n_all, "a:wrong:modality-aware"),
             Row("a", "global mean R@5, random negatives", mean_recall(g_rnd), n_all, "a:global:random"),
             Row("a", "global mean R@5, modality-aware negatives", mean_recall(g_mod),
                 n_all, "a:global:modality-aware")]

    # (b) in-batch only vs hard negatives, without / with the false-negative filter
    m_inb = ws.train("inbatch", base, rnd, cfg.steps, num_negatives=0)
    m_hard = ws.train("hard", base, hard, cfg.steps, num_negatives=k)
    m_hfn = ws.train("hard-fn", base, hard_fn, cfg.steps, num_negatives=k)
    rep_inb, rep_hard, rep_hfn = ws.evaluate("inbatch", m_inb), ws.evaluate("hard", m_hard), ws.evaluate("hard-fn",
                                                                                                          m_hfn)
    rows += [Row("b", "mean R@5, in-batch negatives only", mean_recall(rep_inb), n_all, "b:inbatch"),
             Row("b", f"mean R@5, + {k} hard negatives", mean_recall(rep_hard), n_all, "b:hard"),
             Row("b", f"mean R@5, + {k} hard negatives, FN filter {fn_rule(cfg)}", mean_recall(rep_hfn),
                 n_all, "b:hard-fn")]

    # (c) re-ranking the composed tasks with a point-wise re-ranker trained from the base model
    rr = ws.train_reranker("reranker", base, top_n, cfg.rerank_steps or cfg.steps)
    comp = ["task7"]
    c0, c1 = ws.evaluate("hard-task7", m_hard, tasks=comp), ws.evaluate("hard-task7-rerank", m_hard, tasks=comp,
                                                                         reranker=rr)
    n_comp = resolution(query_counts(c0))
    rows += [Row("c", "composed (task 7) R@5, retrieval only", mean_recall(c0), n_comp, "c:before"),
             Row("c", f"composed (task 7) R@5, + re-rank top-{cfg.rerank}", mean_recall(c1), n_comp, "c:after")]

    # (d) distillation from the fused teacher over each train query's top-N
    teacher = _teacher(ws, m_hard, rr)
    m_dist = ws.train("distill", m_hard, teacher, cfg.steps, type="distill", lr=cfg.small_lr)
    rep_dist = ws.evaluate("distill", m_dist)
    rows += [Row("d", "mean R@5 before distillation (the + hard negatives model)", mean_recall(rep_hard),
                 n_all, "d:before"),
             Row("d", "mean R@5 after distillation", mean_recall(rep_dist), n_all, "d:after")]

    # (e) continual text fine-tuning: text pairs at a small LR with a share of multimodal pairs
    m_text = ws.train("continual-text", m_hard, text, cfg.steps, lr=cfg.small_lr, mix_data=rnd,
                      mix_share=cfg.text_share)
    rep_text = ws.evaluate("continual-text", m_text)
    n_text, n_mm = resolution(query_counts(rep_hard, is_text_task)), resolution(query_counts(rep_hard, _is_mm))
    rows += [Row("e", "text task (task 1) R@5 before", mean_recall(rep_hard, keep=is_text_task),
                 n_text, "e:text:before"),
             Row("e", "text task (task 1) R@5 after continual text FT", mean_recall(rep_text, keep=is_text_task),
                 n_text, "e:text:after"),
             Row("e", "multimodal tasks mean R@5 before", mean_recall(rep_hard, keep=_is_mm), n_mm, "e:mm:before"),
             Row("e", "multimodal tasks mean R@5 after continual text FT", mean_recall(rep_text, keep=_is_mm),
                 n_mm, "e:mm:after")]

    elapsed = time.perf_counter() - t0
    base_how = f"base {cfg.base}" if cfg.base else f"base trained here for {cfg.base_steps} steps"
    title = (f"ablation on world size={cfg.size} seed={cfg.seed}: {base_how}; each stage {cfg.steps} steps of batch "
             f"{cfg.batch_size}")
    total = sum(ws.timings.values())
    meta = {"config": cfg.to_dict(), "this_run_s": round(elapsed, 1), "steps_total_s": round(total, 1),
            "timings_s": ws.timings}
    js, md = write_table(cfg.out, rows, meta, f"{title}\n\nsteps took {total:.0f} s in all (timings.json; world "
                         f"generation and model loading not counted); this invocation {elapsed:.0f} s")
    print_table(rows, title, ws.console)
    ws.log(f"wrote {js} and {md}")
    return rows
