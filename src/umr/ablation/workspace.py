"""The ablation's steps, each resumable: a finished step's file or folder is reused on a rerun.

    ws = Workspace(cfg)                      # builds (or reuses) the world under cfg.out
    data = ws.pairs("hard", embedder, "base", pool="local", opts=MineOptions(top=50, take=2))
    model = ws.train("hard", base, data, steps=30, num_negatives=2)
    report = ws.evaluate("hard", model)      # a dict (EvalReport.to_dict()), cached in evals/hard.json
"""

from __future__ import annotations

import json
import time
from typing import Any

from umr.ablation.config import AblationConfig


class Workspace:
    """Paths, logging and the cached steps of one ablation run (everything under `cfg.out`)."""

    def __init__(self, cfg: AblationConfig, console: Any = None) -> None:
        from rich.console import Console

        from umr.data.world import build_world

        self.cfg = cfg
        self.out = cfg.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.console = console or Console(stderr=True)
        self.t0 = time.perf_counter()
        self.timings_file = self.out / "timings.json"  # seconds per step, kept across resumed runs
        self.timings: dict[str, float] = (json.loads(self.timings_file.read_text())
                                          if self.timings_file.is_file() else {})
        self.world = self.out / f"world-{cfg.size}-{cfg.seed}"
        if not (self.world / "world.json").is_file():
            with self.console.status(f"generating the offline world (size {cfg.size}, seed {cfg.seed})"):
                build_world(self.world, cfg.size, seed=cfg.seed)

    # -- logging -------------------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        self.console.print(f"[dim]\\[{time.perf_counter() - self.t0:6.0f}s][/] {msg}", highlight=False)

    def timed(self, key: str, start: float) -> None:
        """Add the seconds since `start` to step `key`'s time (timings.json)."""
        self.timings[key] = round(self.timings.get(key, 0.0) + time.perf_counter() - start, 1)
        self.timings_file.write_text(json.dumps(self.timings, indent=1) + "\n")

    # -- data ----------------------------------------------------------------------------------------------------
    def pairs(self, name: str, model: Any, cache: str, **mine_kw: Any) -> str:
        """Mined training pairs `name`.jsonl (umr.mine.job.mine); `cache` names the embedding cache of `model`,
        so several files mined with one model embed the pools once. An existing non-empty file is reused."""
        from umr.mine.job import mine

        path, done = self.out / f"{name}.jsonl", self.out / f"{name}.summary.json"
        if done.is_file():  # written once mining finished; a partial file is resumed by `mine` itself
            return str(path)
        start = time.perf_counter()
        self.log(f"mining [bold]{name}[/] …")
        s = mine(model, self.world, path, cache_dir=self.out / "cache" / cache, **mine_kw)
        self.timed(f"mine:{name}", start)
        self.log(f"mined {name}: {s.written} rows, {s.negatives} negatives, false negatives dropped "
                 f"{s.fn_dropped}, wrong-modality share {s.wrong_modality_share:.2f}")
        done.write_text(json.dumps(s.to_dict(), indent=1) + "\n")
        return str(path)

    # -- training ------------------------------------------------------------------------------------------------
    def train(self, name: str, model: str, data: str, steps: int, **overrides: Any) -> str:
        """Train stage `name` from `model` on `data` for `steps` steps; returns its final/ folder (reused when
        present). Defaults: the ablation's batch size and LR, fixed τ (comparable stages), full fine-tuning."""
        from umr.train.config import TrainConfig
        from umr.train.stages import make_trainer

        final = self.out / name / "final"
        if (final / "umr_recipe.json").is_file():
            return str(final)
        settings: dict[str, Any] = {"batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "learn_temperature": False,
                                    "seed": self.cfg.seed, **overrides}
        cfg = TrainConfig.of(model=model, data=data, output_dir=str(self.out / name), max_steps=steps, epochs=10_000,
                          device=self.cfg.device, log_every=10, **settings)
        start = time.perf_counter()
        self.log(f"training [bold]{name}[/]: {steps} steps from {model}")
        trainer = make_trainer(cfg)
        s = trainer.fit()
        path = trainer.save_final()
        self.timed(f"train:{name}", start)
        self.log(f"trained {name}: {s['steps']} steps, loss {s['first_loss']:.3f} → {s['last_loss']:.3f}")
        return str(path)

    def train_reranker(self, name: str, model: str, data: str, steps: int) -> str:
        """Point-wise re-ranker (umr.train.reranker, LoRA r 8 at cfg.rerank_lr) from `model` on mined top-N pairs;
        final/ is reused."""
        from umr.train.lora import LoraSpec
        from umr.train.reranker import RerankTrainConfig, train_reranker

        final = self.out / name / "final"
        if (final / "umr_reranker.json").is_file():
            return str(final)
        start = time.perf_counter()
        self.log(f"training the re-ranker [bold]{name}[/]: {steps} steps from {model}")
        train_reranker(RerankTrainConfig(model=model, data=data, output_dir=str(self.out / name),
                                         lora=LoraSpec(r=8, alpha=16, dropout=0.0), lr=self.cfg.rerank_lr,
                                         epochs=10_000,
                                         max_steps=steps, batch_size=8, seed=self.cfg.seed, device=self.cfg.device))
        summary = json.loads((self.out / name / "summary.json").read_text())
        self.timed(f"train:{name}", start)
        self.log(f"trained {name}: loss {summary['first_loss']:.3f} → {summary['last_loss']:.3f}")
        return str(final)

    # -- evaluation ----------------------------------------------------------------------------------------------
    def evaluate(self, name: str, model: str, pool: str = "local", tasks: list[str] | None = None,
                 reranker: str | None = None) -> dict[str, Any]:
        """The test-split M-BEIR protocol on the world; the report dict is cached in evals/`name`.json."""
        from umr.eval.mbeir import EvalOptions, evaluate
        from umr.models.registry import load_embedder

        path = self.out / "evals" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        start = time.perf_counter()
        self.log(f"evaluating [bold]{name}[/] ({pool} pool{', re-ranked' if reranker else ''}) …")
        rr = None
        if reranker is not None:
            from umr.rerank.prompted import Reranker

            rr = Reranker(reranker, device=self.cfg.device)
        opts = EvalOptions(pool=pool, tasks=tasks, check_images=False, rerank=self.cfg.rerank if rr else 0,
                           fuse_weight=self.cfg.fuse_weight)
        report = evaluate(load_embedder(model, device=self.cfg.device), self.world, opts, reranker=rr).to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
        self.timed(f"eval:{name}", start)
        self.log(f"evaluated {name}: mean headline {100 * report['average']:.1f}")
        return report
