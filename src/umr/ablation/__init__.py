"""The issue-6 ablation on the offline world: mining, re-ranking, distillation and continual text fine-tuning,
each measured against the same base model, as one resumable run.

    rows = run_ablation(AblationConfig(out="runs/ablate", size="small", base="runs/base/final"))
    # or: umr ablate --size small --out runs/ablate --base runs/base/final

`run_ablation` returns the table's rows (`Row(part, measure, value, note)`) and writes ablation.json and
ablation.md into the output folder. Modules: `config` (the settings), `workspace` (cached data, training and
evaluation steps), `measures` (numbers from eval reports, the table), `run` (the parts (a)–(e), top to bottom).
"""

from umr.ablation.config import AblationConfig
from umr.ablation.measures import Row
from umr.ablation.run import run_ablation

__all__ = ["AblationConfig", "Row", "run_ablation"]
