"""`umr demo`: the whole system offline — world → staged training + baselines → mine → re-rank → evaluate →
index → report. What runs at each size is the plan in plans.yaml; this module only wires the library together.

    summary = run_demo("runs/demo", size="small")     # minutes on 2 CPU cores: the README has the measure
    summary["report"]                                  # runs/demo/report/report.html
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from umr.demo.steps import DemoStepError, Steps
from umr.demo.summary import MAIN, print_summary
from umr.errors import UmrError


def load_plan(size: str) -> dict[str, Any]:
    plans = yaml.safe_load(resources.files("umr.demo").joinpath("plans.yaml").read_text())
    if size not in plans:
        raise UmrError(f"no demo plan for size {size!r}; plans: {sorted(plans)} (see umr/demo/plans.yaml)")
    return copy.deepcopy(plans[size])


def staged_config(plan: dict[str, Any], world: Path, out: Path, seed: int) -> Any:
    from umr.train.config import TrainConfig

    # epochs unbounded: each stage runs exactly its max_steps (the budget), however small its data
    raw = {"epochs": 10_000, **plan["staged"], "data": str(world), "output_dir": str(out / "train" / MAIN),
           "seed": seed, "device": "cpu"}
    raw.setdefault("log_every", max(1, embedder_budget(raw) // 80))
    return TrainConfig.from_dict(raw)


def embedder_budget(staged: dict[str, Any]) -> int:
    """Optimiser steps the chain spends on the embedder (the re-ranker stage trains the teacher, not counted)."""
    steps = [s.get("max_steps", staged.get("max_steps")) for s in staged["stages"] if s.get("type") != "reranker"]
    if any(s is None for s in steps):
        raise UmrError("every stage of a demo plan needs max_steps (the baselines get the same budget)")
    return int(sum(steps))


def baseline_config(name: str, spec: dict[str, Any], plan: dict[str, Any], world: Path, out: Path,
                    seed: int) -> Any:
    from umr.train.config import TrainConfig

    budget = embedder_budget(plan["staged"])
    raw = {"batch_size": plan["staged"]["batch_size"], "max_steps": budget, "epochs": 10_000, "seed": seed,
           "device": "cpu", "log_every": max(1, budget // 80), **spec, "data": str(world),
           "output_dir": str(out / "train" / name)}
    return TrainConfig.from_dict(raw)


def train_staged(config: Any) -> dict[str, Any]:
    from umr.train.stages import run_stages, stage_configs, stage_name, teacher_verdicts

    final = run_stages(config, resume=True)
    stages = {stage_name(s): s.run.output_dir for s in stage_configs(config)}
    return {"final": str(final), "stages": stages, "steps": {n: _steps_done(d) for n, d in stages.items()},
            "teacher_verdicts": teacher_verdicts(config)}


def train_baseline(config: Any) -> dict[str, Any]:
    from umr.train.stages import make_trainer

    trainer = make_trainer(config)
    trainer.fit(resume=True)
    return {"final": str(trainer.save_final()), "stages": {"": config.run.output_dir},
            "steps": {"": _steps_done(config.run.output_dir)}}


def _steps_done(folder: str | Path) -> int:
    """The last step a training run logged (its log.jsonl always records the final step)."""
    from umr.train.run_log import read_log

    rows = read_log(folder)
    return int(rows[-1]["step"]) if rows else 0


def evaluate_model(model: str, world: Path, out: Path, name: str, pool: str = "local", reranker: str | None = None,
                   rerank: int = 0, fuse_weight: float = 1.0, local_from_global: bool = False) -> dict[str, Any]:
    """Evaluate on the world's test split; writes OUT/eval/NAME-POOL.json and returns a compact summary.

    A global run also evaluates the global pool's candidates of each task's modality only (`same_modality`:
    what the pool's size costs with no room for modality bias).
    `local_from_global`: the local pools take their vectors from the global pool's, cached by a global run
    of the same model (OUT/cache/NAME), so evaluating both pools embeds the candidates once.
    """
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.eval.report import write_results
    from umr.models.registry import load_embedder

    embedder = load_embedder(model, device="cpu")
    # batch 32: the tiny models embed 20 % faster than at the library's 16 (sorted by cost, little padding)
    opts = EvalOptions(pool=pool, check_images=False, show_progress=True, cache_dir=out / "cache" / name,
                       local_from_global=local_from_global, batch_size=32)
    rr = None
    if reranker and rerank > 0:
        from umr.rerank.prompted import Reranker

        # 20 pairs a forward: on CPU 30 % faster than 8 for the tiny re-ranker (batches span queries)
        rr, opts.rerank, opts.fuse_weight = Reranker(reranker, device="cpu", batch_size=20), rerank, fuse_weight
    report = evaluate(embedder, world, opts, reranker=rr)
    label = f"{name}-{pool}" + (f"-rerank{rerank}" if rr else "")
    write_results(report, out / "eval" / label)
    result = _compact(report)
    if pool == "global":  # the same vectors on the task-modality part of the pool: the pool's cost by size alone
        opts.pool = "global-modality"
        same = evaluate(embedder, world, opts)
        write_results(same, out / "eval" / f"{name}-global-modality")
        result["same_modality"] = {k: v for k, v in _compact(same).items() if k in ("average", "sets")}
    return result


def _compact(report: Any) -> dict[str, Any]:
    sets = {r.name: {"task_id": r.task_id, "headline": round(100 * r.headline, 2), "k": r.headline_k,
                     "r1": round(100 * r.metrics.recall[1], 2), "mrr10": round(100 * r.metrics.mrr10, 2),
                     "wrong_modality": None if r.wrong_modality is None else round(100 * r.wrong_modality, 2)}
            for r in report.results}
    bias = [s["wrong_modality"] for s in sets.values() if s["wrong_modality"] is not None]

    def mean(key: str) -> float:
        return round(sum(s[key] for s in sets.values()) / max(1, len(sets)), 2)

    return {"average": round(100 * report.average, 2), "sets": sets, "r1": mean("r1"), "mrr10": mean("mrr10"),
            "wrong_modality": round(sum(bias) / len(bias), 2) if bias else None}


def split_baselines(plan: dict[str, Any], jobs: int) -> tuple[list[str], list[str]]:
    """(baselines the second process runs, baselines this process runs after the chain). The plan's `parallel`
    names the second process' share, chosen so both processes finish together; jobs=1 runs all here."""
    names = list(plan["baselines"])
    unknown = sorted(set(plan.get("parallel", [])) - set(names))
    if unknown:
        raise UmrError(f"demo plan: parallel names {unknown}, which are not baselines ({names})")
    if jobs <= 1:
        return [], names
    second = [n for n in names if n in plan.get("parallel", names)]
    return second, [n for n in names if n not in second]


def baseline_steps(steps: Steps, plan: dict[str, Any], world: Path, out: Path, seed: int, names: list[str],
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Train and evaluate baselines (global pool first when asked, then local): (models, local, global)."""
    models, ev, glob = {}, {}, {}
    for name in names:
        spec = plan["baselines"][name]
        cfg = baseline_config(name, spec, plan, world, out, seed)
        models[name] = steps.run(f"train-{name}", f"train baseline {name} ({cfg.model.model}, same budget: "
                                 f"{cfg.optim.max_steps} steps of {cfg.optim.batch_size})",
                                 lambda cfg=cfg: train_baseline(cfg))
        final = models[name]["final"]
        both = name in plan["eval"]["global"]
        if both:  # global first: the local pools then reuse its cached candidate vectors
            glob[name] = steps.run(f"eval-global-{name}", f"evaluate {name} on the global pool",
                                   lambda final=final, name=name: evaluate_model(final, world, out, name, "global"))
        ev[name] = steps.run(f"eval-{name}", f"evaluate {name} (local pools)",
                             lambda final=final, name=name, both=both: evaluate_model(
                                 final, world, out, name, local_from_global=both))
    return models, ev, glob


def _baseline_worker(out: str, size: str, seed: int, names: list[str]) -> None:
    """The second process of `jobs=2`: the baselines with one torch thread, output to OUT/baselines.log."""
    import sys

    import torch

    log = open(Path(out) / "baselines.log", "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - the process' life
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    torch.set_num_threads(1)
    plan = load_plan(size)
    steps = Steps(Path(out), total=3 * len(names), console=Console(file=log, width=120), name="steps-baselines")
    try:
        baseline_steps(steps, plan, Path(out) / "world", Path(out), seed, names)
    except Exception:
        sys.exit(1)  # Steps recorded which step failed and why in steps-baselines-failed.txt


def run_demo(out: str | Path = "runs/demo", size: str = "small", seed: int = 0, jobs: int = 2,
             console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) every step; returns the summary the report is made from.

    jobs=2 (default) trains and evaluates the baselines in a second process while this one runs the staged
    chain, each with one torch thread: on 2 cores two single-threaded jobs beat one job on two threads (the tiny
    models' kernels are too small to split well). Single-threaded CPU runs are also bit-reproducible.
    """
    import multiprocessing

    import torch

    from umr.data.world import build_world
    from umr.demo.examples import build_index, example_queries
    from umr.demo.report import write_report

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = load_plan(size)
    world = out / "world"
    # world, chain, its 2 stage evals, global + local + re-ranked evals, index, report (+ the baselines' steps)
    n_main = 7 + (MAIN in plan["eval"]["global"]) + bool(plan["eval"].get("rerank"))
    second, here = split_baselines(plan, jobs)
    n_here = len(here) * 2 + sum(n in plan["eval"]["global"] for n in here)
    steps = Steps(out, total=n_main + n_here, console=console)

    def make_world() -> dict[str, Any]:
        build_world(world, size=plan["world"], seed=seed)
        return {"root": str(world)}

    steps.run("world", f"generate the offline world (size {plan['world']}, seed {seed})", make_world)
    worker = None
    if jobs > 1:
        torch.set_num_threads(1)
    if second:
        worker = multiprocessing.get_context("spawn").Process(target=_baseline_worker,
                                                              args=(str(out), size, seed, second))
        worker.start()
        console.print(f"[bold]baselines[/] {', '.join(second)} train and evaluate in a second process on the same "
                      f"budget (progress: {out / 'baselines.log'}); {', '.join(here) or 'none'} follow the chain here")
    staged = staged_config(plan, world, out, seed)
    models = {MAIN: steps.run(f"train-{MAIN}", f"train {staged.model.model} with the U-MARVEL-style staged recipe "
                              f"({embedder_budget(plan['staged'])} embedder steps + a re-ranker, mined negatives)",
                              lambda: train_staged(staged))}
    final = models[MAIN]["final"]
    stage_dirs = models[MAIN]["stages"]
    rr_dir = str(Path(stage_dirs["reranker"]) / "final") if "reranker" in stage_dirs else None
    ev: dict[str, Any] = {}
    for stage in ("instruct", "hard"):  # the chain before its hard-negative and distillation stages (ablation)
        if stage in stage_dirs:
            ev[f"stage:{stage}"] = steps.run(
                f"eval-stage-{stage}", f"evaluate the chain after its '{stage}' stage (local pools)",
                lambda stage=stage: evaluate_model(str(Path(stage_dirs[stage]) / "final"), world, out,
                                                   f"stage-{stage}"))
    both = MAIN in plan["eval"]["global"]
    glob = {MAIN: steps.run(f"eval-global-{MAIN}", f"evaluate {MAIN} on the global pool (modality bias)",
                            lambda: evaluate_model(final, world, out, MAIN, "global"))} if both else {}
    ev[MAIN] = steps.run(f"eval-{MAIN}", f"evaluate {MAIN} (local pools)",
                         lambda: evaluate_model(final, world, out, MAIN, local_from_global=both))
    rerank = int(plan["eval"].get("rerank", 0))
    if rr_dir and rerank:
        ev[f"{MAIN}+rerank"] = steps.run(
            "eval-rerank", f"re-rank {MAIN}'s top-{rerank} with the chain's re-ranker (local pools)",
            lambda: evaluate_model(final, world, out, MAIN, reranker=rr_dir, rerank=rerank,
                                   fuse_weight=float(plan["eval"].get("fuse_weight", 1.0)), local_from_global=both))
    index = steps.run("index", f"build the FAISS index of the global test pool with {MAIN}",
                      lambda: build_index(final, world, out, MAIN))
    b_models, b_ev, b_glob = baseline_steps(steps, plan, world, out, seed, here)
    seconds = steps.seconds()
    if worker is not None:
        with console.status(f"waiting for the baselines' process (progress: {out / 'baselines.log'})"):
            worker.join()
        if worker.exitcode != 0:
            failed = out / "steps-baselines-failed.txt"
            if failed.is_file():
                raise DemoStepError.from_file(failed)
            raise DemoStepError("baselines", f"the baselines' process exited with code {worker.exitcode}",
                                out / "baselines.log")
        b_steps = Steps(out, total=0, console=Console(quiet=True), name="steps-baselines")
        s_models, s_ev, s_glob = baseline_steps(b_steps, plan, world, out, seed, second)  # done: reads results
        seconds.update({f"{k} (2nd process)": v for k, v in b_steps.seconds().items()})
        b_models, b_ev, b_glob = {**b_models, **s_models}, {**b_ev, **s_ev}, {**b_glob, **s_glob}
    models.update({n: b_models[n] for n in plan["baselines"]})
    ev.update({n: b_ev[n] for n in plan["baselines"]})
    glob.update({n: b_glob[n] for n in plan["baselines"] if n in b_glob})
    examples = example_queries(final, world, out, n=int(plan.get("examples", 4)))
    summary = {"size": size, "seed": seed, "jobs": jobs, "plan": plan, "models": models, "eval": ev,
               "global": glob, "index": index, "examples": examples, "reranker": rr_dir,
               "seconds": {**seconds, **steps.seconds()}}
    report = steps.run("report", "write the report (tables, plots, example queries)",
                       lambda: str(write_report(summary, out / "report")))
    summary["report"] = report
    print_summary(summary, console)
    return summary
