"""Objects of the world: a shape with five more attributes, the words for them, and edits between them.

An object's `sig` (signature) is its attribute tuple as a string; the generator keeps signatures unique within a
pool, so a description that names every attribute picks out exactly one candidate (the oracle's ceiling).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace

SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
COLOURS = {  # name → RGB; far apart so a 112-px rendering keeps them distinct
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 210, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "cyan": (40, 200, 210), "pink": (240, 120, 180),
}
SIZES = ("small", "medium", "large")
PATTERNS = ("solid", "striped", "dotted", "outlined")
POSITIONS = ("left", "right", "top", "bottom", "centre")
BACKGROUNDS = {"white": (250, 250, 250), "black": (20, 20, 20), "grey": (128, 128, 128), "beige": (225, 210, 170)}

VALUES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES, "pattern": PATTERNS, "position": POSITIONS,
    "background": tuple(BACKGROUNDS),
}


@dataclass(frozen=True, order=True)
class Obj:
    """One object: what is drawn and where."""

    shape: str
    colour: str
    size: str
    pattern: str
    position: str
    background: str

    @property
    def sig(self) -> str:
        return "|".join(getattr(self, f.name) for f in fields(self))

    def attrs(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def neighbours(self) -> list[Obj]:
        """Every object that differs from this one in exactly one attribute (the hard distractors)."""
        return [replace(self, **{k: v}) for k, vals in VALUES.items() for v in vals if v != getattr(self, k)]


def all_objects() -> list[Obj]:
    """The full attribute grid, in a fixed order (8·8·3·4·5·4 = 15,360 objects)."""
    return [Obj(s, c, z, p, o, b) for s in SHAPES for c in COLOURS for z in SIZES for p in PATTERNS
            for o in POSITIONS for b in BACKGROUNDS]


# -- words -----------------------------------------------------------------------------------------------------
PATTERN_WORDS = {"solid": "solid", "striped": "striped", "dotted": "polka-dot", "outlined": "hollow"}
POSITION_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
                  "centre": "in the centre"}
SIZE_CODES = {"small": "S", "medium": "M", "large": "L"}


def phrase(o: Obj) -> str:
    """Plain noun phrase: "a large striped red star"."""
    return f"a {o.size} {PATTERN_WORDS[o.pattern]} {o.colour} {o.shape}"


def caption(o: Obj, style: str, rng: random.Random) -> str:
    """A description naming all six attributes, in the register of a dataset style."""
    where, bg = POSITION_WORDS[o.position], o.background
    if style == "news":
        lead = rng.choice(["Pictured:", "Photo:", "File image:", "Seen here:"])
        tail = rng.choice(["officials said", "according to witnesses", "in a handout image", "on Tuesday"])
        return f"{lead} {phrase(o)} {where}, against a {bg} backdrop, {tail}."
    if style == "coco":
        return rng.choice([f"{phrase(o)} {where} of a {bg} picture",
                           f"there is {phrase(o)} {where} on a {bg} background",
                           f"{phrase(o)} sitting {where} with {bg} behind it"])
    if style == "fashion":
        return (f"{o.colour} {o.shape} print, {PATTERN_WORDS[o.pattern]} finish, size {SIZE_CODES[o.size]}, "
                f"placement: {o.position}, {bg} base")
    raise ValueError(f"unknown caption style {style!r}")


def difference(src: Obj, dst: Obj, style: str, rng: random.Random) -> str:
    """A modification text that turns src into dst ("make it blue and smaller")."""
    parts = []
    for key in VALUES:
        a, b = getattr(src, key), getattr(dst, key)
        if a == b:
            continue
        if key == "colour":
            parts.append(rng.choice([f"make it {b}", f"change the colour to {b}", f"{b} instead of {a}"]))
        elif key == "size":
            order = SIZES.index(b) - SIZES.index(a)
            word = ("bigger" if order > 0 else "smaller") if abs(order) == 1 else b
            parts.append(rng.choice([f"make it {word}", f"{word} please"]) if abs(order) == 1 else f"make it {b}")
        elif key == "shape":
            parts.append(rng.choice([f"turn it into a {b}", f"a {b} instead"]))
        elif key == "pattern":
            parts.append(rng.choice([f"make it {PATTERN_WORDS[b]}", f"with a {PATTERN_WORDS[b]} finish"]))
        elif key == "position":
            place = POSITION_WORDS[b]
            parts.append(rng.choice([f"move it to {place.split(' ', 1)[1]}", f"put it {place}"]))
        else:
            parts.append(rng.choice([f"use a {b} background", f"on {b} instead"]))
    if style == "fashioniq":
        return " and ".join(parts)
    return "; ".join(p[0].upper() + p[1:] for p in parts) + "."


def edit(o: Obj, rng: random.Random, n_changes: int) -> Obj:
    """A random object that differs from o in exactly n_changes attributes."""
    keys = rng.sample(list(VALUES), n_changes)
    return replace(o, **{k: rng.choice([v for v in VALUES[k] if v != getattr(o, k)]) for k in keys})
