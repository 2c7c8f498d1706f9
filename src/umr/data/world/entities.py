"""Named entities: an object with a made-up name and three facts (year, place, material), and their texts.

Entity texts describe the object in words, so an image of an unseen entity can still be matched to its passage
(test entities never appear in training: names cannot be memorised).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from umr.data.world.attributes import PATTERN_WORDS, POSITION_WORDS, Obj, phrase

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "kr", "st", "dr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
PLACES = ("Varn", "Ostrel", "Miradel", "Quenby", "Tarsk", "Lunhaven", "Crestwick", "Palodra", "Eskara", "Brinmoor",
          "Feldspar", "Gallowin", "Harrowgate", "Istrelle", "Jorvik", "Kelmara", "Lorwen", "Morvath", "Norrend",
          "Orlesk", "Pellinor", "Rivenmoor", "Saltmere", "Thornbury", "Ulmsted", "Vellgarde", "Westerly", "Yarrow")
MATERIALS = ("glass", "bronze", "clay", "oak", "jade", "marble", "silver", "amber", "slate", "ivory", "copper", "felt")
FACTS = ("year", "place", "material")
FACT_QUESTIONS = {
    "year": ("In which year was this first recorded?", "When was this object first recorded?",
             "What year does this date from?"),
    "place": ("Where was this found?", "In which town was this first recorded?", "Where does this come from?"),
    "material": ("What is this made of?", "Which material is this made from?", "What material is this?"),
}
NAME_QUESTIONS = ("What is this?", "What is this object called?", "Name this object.", "Which entity is this?")


@dataclass(frozen=True)
class Entity:
    name: str
    obj: Obj
    year: int
    place: str
    material: str

    def fact(self, kind: str) -> str:
        return str(getattr(self, kind))


def make_name(rng: random.Random, taken: set[str]) -> str:
    """A pronounceable unique name ("Kraivo"), registered in `taken`."""
    while True:
        name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((2, 3)))).capitalize()
        if name not in taken:
            taken.add(name)
            return name


def make_entity(obj: Obj, rng: random.Random, taken: set[str]) -> Entity:
    return Entity(make_name(rng, taken), obj, rng.randint(1700, 1999), rng.choice(PLACES), rng.choice(MATERIALS))


def looks(o: Obj) -> str:
    return f"{phrase(o)} {POSITION_WORDS[o.position]} on a {o.background} ground"


def description(e: Entity, rng: random.Random) -> str:
    """The OVEN/WebQA-style passage: what it looks like, then its facts."""
    first = rng.choice([f"The {e.name} is {looks(e.obj)}.", f"{e.name}: {looks(e.obj)}."])
    return (f"{first} It was first recorded in {e.year} in {e.place} and is made of {e.material}.")


def fact_passage(e: Entity, kind: str) -> str:
    """One InfoSeek-style passage per fact, each also describing the object."""
    body = {"year": f"was first recorded in {e.year}", "place": f"was found in {e.place}",
            "material": f"is made of {e.material}"}[kind]
    return f"The {e.name}, {looks(e.obj)}, {body}."


def card_text(e: Entity, kind: str | None, style: str) -> str:
    """Short text beside an image: it omits the looks, so the image part of a card carries them."""
    if style == "edis":
        return f"{e.place} gallery unveils the {e.name}, a {e.obj.shape} of {e.material}."
    if kind is None:
        return f"{e.name}. First recorded in {e.year} in {e.place}; made of {e.material}."
    return {"year": f"{e.name}: first recorded in {e.year}.", "place": f"{e.name}: found in {e.place}.",
            "material": f"{e.name}: made of {e.material}."}[kind]


#: facets a text query can use to point at an entity; visual ones are answered by an image or the looks text
FACETS = ("colour", "shape", "pattern", "size", "position", "background", "year", "place", "material")


def facet_value(e: Entity, facet: str) -> str:
    return e.fact(facet) if facet in FACTS else getattr(e.obj, facet)


def facet_query(e: Entity, facets: list[str], style: str, rng: random.Random) -> str:
    """A question naming the given facets of e (WebQA / EDIS style)."""
    o = e.obj
    words = []
    if "size" in facets:
        words.append(o.size)
    if "pattern" in facets:
        words.append(PATTERN_WORDS[o.pattern])
    if "colour" in facets:
        words.append(o.colour)
    words.append(o.shape if "shape" in facets else "object")
    noun = " ".join(words)
    extra = []
    if "position" in facets:
        extra.append(f"shown {POSITION_WORDS[o.position]}")
    if "background" in facets:
        extra.append(f"on a {o.background} ground")
    if "material" in facets:
        extra.append(f"made of {e.material}")
    if "place" in facets:
        extra.append(f"from {e.place}")
    if "year" in facets:
        extra.append(f"first recorded in {e.year}")
    tail = ", ".join(extra)
    if style == "edis":
        return f"News: {noun} {tail} goes on show".replace("  ", " ")
    lead = rng.choice(["Which", "What is the", "Find the"])
    return f"{lead} {noun} {tail}?".replace(" ?", "?")


def unique_facets(e: Entity, others: list[Entity], rng: random.Random, base: list[str]) -> list[str]:
    """`base` facets plus random extra ones until no other entity in `others` shares all their values."""
    chosen = list(base)
    spare = [f for f in FACETS if f not in chosen]
    rng.shuffle(spare)
    while True:
        clash = [x for x in others if x is not e and all(facet_value(x, f) == facet_value(e, f) for f in chosen)]
        if not clash or not spare:
            return chosen
        # add the facet that rules out most of the clashing entities (keeps questions short)
        spare.sort(key=lambda f: -sum(facet_value(x, f) != facet_value(e, f) for x in clash))
        chosen.append(spare.pop(0))
