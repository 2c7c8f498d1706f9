"""The offline demo (`umr demo`, the README's main command): see umr.demo.pipeline."""

from umr.demo.pipeline import run_demo
from umr.demo.steps import DemoStepError

__all__ = ["DemoStepError", "run_demo"]
