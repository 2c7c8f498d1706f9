"""The generator contract: write one query text per (source, kind) request; pluggable by name
(`umr.synthesis.factory.make_generator`, which sits above the generators it picks, so none imports it back).

    gen = make_generator("rule")                       # templates over the source text (deterministic)
    gen = make_generator("Qwen/Qwen2-1.5B-Instruct")   # any HF causal LM or Qwen2-VL-family MLLM (a folder works)
    texts = gen.generate([Request(source, KINDS["it2t"], seed=0)])   # str per request, None = nothing usable

A generator only writes the *query text*; the pipeline pairs it with the source image (for image queries) and
builds the positive from the source, so every generator yields the same three kinds of training pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from umr.synthesis.kinds import Kind
from umr.synthesis.sources import Source


@dataclass(frozen=True)
class Request:
    """Write a query of `kind` for `source`; `seed` makes sampling generators reproducible."""

    source: Source
    kind: Kind
    seed: int = 0


class Generator(Protocol):
    """Anything with a name (it keys the resume files) and a batched `generate`."""

    name: str

    def generate(self, requests: list[Request]) -> list[str | None]:
        """One query text per request, in order; None (or "") when the generator produced nothing usable."""
        ...
