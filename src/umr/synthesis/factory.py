"""Picking a query generator by name: "rule", or any HF causal LM / MLLM (`umr.synthesis.generators`)."""

from __future__ import annotations

from typing import Any

from umr.synthesis.generators import Generator


def make_generator(name: str, **options: Any) -> Generator:
    """"rule" → RuleGenerator; anything else is loaded with transformers (HFGenerator; options go to it)."""
    if name == "rule":
        from umr.synthesis.rule import RuleGenerator

        return RuleGenerator()
    from umr.synthesis.hf import HFGenerator

    return HFGenerator(name, **options)
