"""A template generator: questions about what the source text says (a year, a place, a material, a name).

It reads the source caption or passage with a few generic patterns — a year ("1820"), "made of X", "in/from
Place", a capitalised name — and fills question templates:

  image queries (it2t, it2it): one fact is asked about the pictured thing ("What is this made of?"), or, when the
      text states none, a describe-the-picture question; the image names the thing, the text picks the facet.
  text queries (t2it): two facts (or, without facts, a window of the text's content words) describe the target
      so it can be found without seeing it; names are left out, so the query cannot be matched by name alone.

Deterministic: the choices are seeded by (seed, source id, kind).
"""

from __future__ import annotations

import random
import re

from umr.synthesis.generators import Request

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_MATERIAL = re.compile(r"\bmade (?:of|from) ([A-Za-z]+)")
_PLACE = re.compile(r"\b(?:in|from|at) ([A-Z][a-z]+)")
_CAPITAL = re.compile(r"\b([A-Z][a-z]{2,})\b")
STOPWORDS = frozenset((
    "a", "an", "the", "of", "and", "or", "with", "in", "on", "at", "to", "from", "by", "for", "is", "are", "was",
    "were", "be", "been", "this", "that", "these", "those", "it", "its", "as", "into", "against", "behind", "there",
    "here", "has", "have", "had", "which", "what", "who", "where", "when", "how", "than", "then", "very"))

IMAGE_QUESTIONS: dict[str, tuple[str, ...]] = {
    "year": ("In which year was this first recorded?", "When does this date from?", "What year is this from?"),
    "place": ("Where is this from?", "Where was this found?", "In which place was this recorded?"),
    "material": ("What is this made of?", "Which material is this made from?", "What material is this?"),
    "name": ("What is this?", "What is this object called?", "Name the object in the image."),
    "none": ("What is shown in this picture?", "Describe what this image shows.",
             "Which description fits this image?"),
}
TEXT_CLAUSES = {"year": "first recorded in {}", "place": "from {}", "material": "made of {}"}
TEXT_LEADS = ("Which object is", "Find the object", "Show the picture of the object")


def facts(text: str) -> dict[str, str]:
    """What the patterns find in a text: any of year, material, place, name."""
    found: dict[str, str] = {}
    if m := _YEAR.search(text):
        found["year"] = m.group(1)
    if m := _MATERIAL.search(text):
        found["material"] = m.group(1).lower()
    if m := _PLACE.search(text):
        found["place"] = m.group(1)
    # a name: a capitalised word that is not a function word ("The") or the place already found
    names = [w for w in _CAPITAL.findall(text) if w.lower() not in STOPWORDS and w != found.get("place")]
    if names:
        found["name"] = names[0]
    return found


def content_words(text: str) -> list[str]:
    """Lower-cased words of the text without function words and capitalised words (names, places)."""
    words = re.findall(r"[A-Za-z][A-Za-z-]+|\d+", text)
    return [w.lower() for w in words if w.lower() not in STOPWORDS and not w[0].isupper()]


class RuleGenerator:
    """Template questions from the source text (see the module docstring); needs no model."""

    name = "rule"

    def generate(self, requests: list[Request]) -> list[str | None]:
        return [self.one(r) for r in requests]

    def one(self, req: Request) -> str | None:
        text = req.source.text
        if not text:
            return None
        rng = random.Random(f"{req.seed}|{req.source.sid}|{req.kind.name}")
        found = facts(text)
        if req.kind.query_has_image:
            choices = [k for k in ("year", "place", "material", "name") if k in found] or ["none"]
            return rng.choice(IMAGE_QUESTIONS[rng.choice(choices)])
        clauses = [k for k in TEXT_CLAUSES if k in found]
        if len(clauses) >= 2:
            picked = rng.sample(clauses, 2)
            body = ", ".join(TEXT_CLAUSES[k].format(found[k]) for k in picked)
            return f"{rng.choice(TEXT_LEADS)} {body}?"
        words = content_words(text)
        if not words:
            return None
        start = rng.randrange(max(1, len(words) - 5))
        return f"Find the picture of the {' '.join(words[start:start + 6])}"
