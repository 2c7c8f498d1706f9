"""GME-style fused-modal training data synthesis (see design.md §2 and `umr synthesize --help`).

    from umr.synthesis import SynthConfig, synthesize
    report = synthesize(SynthConfig(source="data/world", out="data/synth", generator="rule",
                                    filter_model="runs/base/final", top_k=5))
    print(report.table())

Modules: sources (image + text sources), kinds (the three query kinds), generators / rule / hf (query writers),
dedup, filter (retriever consistency), progress (resume files), writer (the M-BEIR root), pipeline (the whole).
"""

from umr.synthesis.factory import make_generator
from umr.synthesis.generators import Generator, Request
from umr.synthesis.kinds import KINDS, Kind
from umr.synthesis.pipeline import SynthConfig, SynthReport, synthesize
from umr.synthesis.sources import Source, load_sources

__all__ = ["KINDS", "Generator", "Kind", "Request", "Source", "SynthConfig", "SynthReport", "load_sources",
           "make_generator", "synthesize"]
