"""The eval sets of the world: for one dataset and split, build queries and a local pool.

Every pool is built around its queries' targets: their one-attribute neighbours go in first (hard distractors),
then random objects of the split fill it up. Every candidate and query gets a hidden `key` (in world_meta.jsonl):
a candidate's key is what it shows, a query's key is the key of the candidate it asks for. Keys are unique in
each pool, so the oracle that reads them answers every query (the ceiling).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from umr.data.mbeir import Candidate, Query
from umr.data.world.attributes import VALUES, Obj, caption, difference
from umr.data.world.entities import (
    FACT_QUESTIONS,
    FACTS,
    NAME_QUESTIONS,
    Entity,
    card_text,
    description,
    facet_query,
    fact_passage,
    make_entity,
    unique_facets,
)


@dataclass
class Ctx:
    """What every builder needs: one dataset, one split, shared id counters, image and meta registries."""

    rng: random.Random
    dataset: str
    dsid: int
    split: str
    objects: list[Obj]  # this split's objects, shuffled; disjoint from the other splits'
    counters: dict[str, int]  # "did:<dsid>" / "qid:<dsid>" → last number used (ids unique across splits)
    images: dict[str, tuple[Obj, int, tuple[int, int, int] | None]]  # relative path → (object, variant, frame)
    meta: list[dict[str, Any]]
    names: set[str]  # entity names taken, across the whole world
    object_set: set[Obj] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)  # did → hidden key
    frame: tuple[int, int, int] | None = None  # the dataset's look (render.render)

    def __post_init__(self) -> None:
        self.object_set = set(self.objects)

    def _next(self, kind: str) -> str:
        key = f"{kind}:{self.dsid}"
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{self.dsid}:{self.counters[key]}"

    def image(self, obj: Obj, variant: int) -> str:
        slug = obj.sig.replace("|", "-")
        path = f"images/{self.dataset}/{self.split}/{slug}_v{variant}.png"
        self.images[path] = (obj, variant, self.frame)
        return path

    def cand(self, modality: str, content: str, txt: str | None = None, obj: Obj | None = None,
             variant: int = 0, attrs: dict[str, Any] | None = None) -> Candidate:
        did = self._next("did")
        img = self.image(obj, variant) if obj is not None and "image" in modality else None
        key = f"{self.dsid}|{modality}|{content}"
        self.meta.append({"id": did, "kind": "did", "key": key, "attrs": attrs or (obj.attrs() if obj else {})})
        self.keys[did] = key
        return Candidate(did=did, modality=modality, txt=txt, img_path=img)

    def query(self, task: int, modality: str, pos: Candidate, pos_key: str, txt: str | None = None,
              obj: Obj | None = None, variant: int = 0, neg: list[Candidate] | None = None,
              attrs: dict[str, Any] | None = None) -> Query:
        qid = self._next("qid")
        img = self.image(obj, variant) if obj is not None else None
        self.meta.append({"id": qid, "kind": "qid", "key": pos_key, "attrs": attrs or {}})
        negs = [c.did for c in (neg or [])] if self.split == "train" else []
        return Query(qid=qid, modality=modality, txt=txt, img_path=img, pos=[pos.did], neg=negs, task_id=task)


def key_of(ctx: Ctx, cand: Candidate) -> str:
    return ctx.keys[cand.did]


def choose(ctx: Ctx, n_targets: int, pool_size: int) -> tuple[list[Obj], list[Obj], dict[Obj, Obj]]:
    """(targets, pool objects, neighbour → its target). Targets are distinct; the pool holds them all."""
    rng = ctx.rng
    start = rng.randrange(len(ctx.objects))
    order = ctx.objects[start:] + ctx.objects[:start]
    pool_size = max(pool_size, n_targets)
    targets = order[:n_targets]
    pool: dict[Obj, None] = dict.fromkeys(targets)
    near: dict[Obj, Obj] = {}
    for t in targets:
        nbrs = [o for o in t.neighbours() if o in ctx.object_set and o not in pool]
        for o in rng.sample(nbrs, min(3, len(nbrs))):
            if len(pool) < pool_size:
                pool[o] = None
                near[o] = t
    for o in order[n_targets:]:
        if len(pool) >= pool_size:
            break
        pool.setdefault(o, None)
    objs = list(pool)
    rng.shuffle(objs)
    return targets, objs, near


def _negs(near: dict[Obj, Obj], target: Obj, by_obj: dict[Obj, Candidate]) -> list[Candidate]:
    return [by_obj[o] for o, t in near.items() if t == target and o in by_obj]


# -- object tasks ------------------------------------------------------------------------------------------------
def caption_sets(ctx: Ctx, nq: int, pool_size: int, style: str) -> dict[int, tuple[list[Query], list[Candidate]]]:
    """Task 0 (caption → image) and task 3 (image → caption) over one shared set of objects."""
    rng = ctx.rng
    targets, objs, near = choose(ctx, 2 * nq, pool_size)
    images = {o: ctx.cand("image", o.sig, obj=o) for o in objs}
    texts = {o: ctx.cand("text", o.sig, txt=caption(o, style, rng), obj=o) for o in objs}
    q0 = [ctx.query(0, "text", images[o], key_of(ctx, images[o]), txt=caption(o, style, rng),
                    neg=_negs(near, o, images), attrs=o.attrs()) for o in targets[:nq]]
    q3 = [ctx.query(3, "image", texts[o], key_of(ctx, texts[o]), obj=o, neg=_negs(near, o, texts),
                    attrs=o.attrs()) for o in targets[nq:]]
    return {0: (q0, list(images.values())), 3: (q3, list(texts.values()))}


def similar_image_set(ctx: Ctx, nq: int, pool_size: int) -> tuple[list[Query], list[Candidate]]:
    """Task 4: an image → another rendering of the same object, among renderings of its neighbours."""
    targets, objs, near = choose(ctx, nq, pool_size)
    pool = {o: ctx.cand("image", o.sig, obj=o, variant=1) for o in objs}
    queries = [ctx.query(4, "image", pool[o], key_of(ctx, pool[o]), obj=o, variant=2, neg=_negs(near, o, pool),
                         attrs=o.attrs()) for o in targets]
    return queries, list(pool.values())


COMPOSE_KEYS = {"fashioniq": ("colour", "size", "pattern"), "cirr": ("shape", "position", "background", "colour")}


def composed_set(ctx: Ctx, nq: int, pool_size: int, style: str) -> tuple[list[Query], list[Candidate]]:
    """Task 7: reference image + "make it blue and smaller" → the edited object's image.

    The pool holds the reference itself and each single-change half-way object: the hard negatives.
    """
    rng = ctx.rng
    refs, objs, _ = choose(ctx, nq, pool_size)
    pairs, taken = [], set()
    allowed = COMPOSE_KEYS[style]
    for ref in refs:
        for _ in range(50):  # the target must be an object of this split (splits stay disjoint)
            keys = rng.sample(allowed, rng.choice((1, 2)))
            tgt = Obj(**{**ref.attrs(), **{k: rng.choice([v for v in VALUES[k] if v != getattr(ref, k)])
                                           for k in keys}})
            if tgt in ctx.object_set and tgt not in taken and tgt not in refs:
                break
        else:
            continue
        taken.add(tgt)
        pairs.append((ref, tgt, keys))
    pool_objs: dict[Obj, None] = {}
    for ref, tgt, keys in pairs:
        pool_objs[tgt] = None
        pool_objs[ref] = None
        for k in keys:  # half-way objects: only one of the requested changes applied
            half = Obj(**{**ref.attrs(), k: getattr(tgt, k)})
            if half in ctx.object_set:
                pool_objs.setdefault(half, None)
    for o in objs:
        if len(pool_objs) >= pool_size:
            break
        pool_objs.setdefault(o, None)
    ordered = list(pool_objs)
    rng.shuffle(ordered)
    pool = {o: ctx.cand("image", o.sig, obj=o) for o in ordered}
    queries = []
    for ref, tgt, keys in pairs:
        halves = [Obj(**{**ref.attrs(), k: getattr(tgt, k)}) for k in keys if len(keys) > 1]
        half = [pool[h] for h in halves if h in pool]
        queries.append(ctx.query(7, "image,text", pool[tgt], key_of(ctx, pool[tgt]),
                                 txt=difference(ref, tgt, style, rng), obj=ref, neg=[pool[ref], *half],
                                 attrs={"reference": ref.attrs(), "target": tgt.attrs()}))
    return queries, list(pool.values())


# -- entity tasks ------------------------------------------------------------------------------------------------
def make_entities(ctx: Ctx, n_targets: int, n_total: int) -> tuple[list[Entity], list[Entity]]:
    """(targets, all). A neighbour object of a target becomes a *sibling* entity sharing two of its facts."""
    targets, objs, near = choose(ctx, n_targets, n_total)
    made: dict[Obj, Entity] = {o: make_entity(o, ctx.rng, ctx.names) for o in objs}
    for o, t in near.items():
        keep = ctx.rng.sample(FACTS, 2)
        e = made[o]
        made[o] = Entity(e.name, o, **{f: getattr(made[t] if f in keep else e, f) for f in FACTS})
    return [made[o] for o in targets], [made[o] for o in objs]


def _attrs(e: Entity, kind: str | None = None) -> dict[str, Any]:
    return {**e.obj.attrs(), "name": e.name, "year": e.year, "place": e.place, "material": e.material,
            "fact": kind or ""}


def wiki_sets(ctx: Ctx, nq: int, pool_size: int) -> dict[int, tuple[list[Query], list[Candidate]]]:
    """Task 1 (question → passage) and task 2 (question → image + short text card), WebQA-like."""
    rng = ctx.rng
    targets, ents = make_entities(ctx, 2 * nq, pool_size)
    passages = {e.name: ctx.cand("text", e.name, txt=description(e, rng), attrs=_attrs(e)) for e in ents}
    cards = {e.name: ctx.cand("image,text", e.name, txt=card_text(e, None, "wiki"), obj=e.obj, attrs=_attrs(e))
             for e in ents}
    q1, q2 = [], []
    for e in targets[:nq]:
        facets = unique_facets(e, ents, rng, rng.sample(["year", "place", "material", "colour", "shape"], 2))
        q1.append(ctx.query(1, "text", passages[e.name], key_of(ctx, passages[e.name]),
                            txt=facet_query(e, facets, "wiki", rng), attrs=_attrs(e)))
    for e in targets[nq:]:
        base = [rng.choice(["colour", "shape", "pattern"]), rng.choice(["year", "place", "material"])]
        facets = unique_facets(e, ents, rng, base)
        q2.append(ctx.query(2, "text", cards[e.name], key_of(ctx, cards[e.name]),
                            txt=facet_query(e, facets, "wiki", rng), attrs=_attrs(e)))
    return {1: (q1, list(passages.values())), 2: (q2, list(cards.values()))}


def edis_set(ctx: Ctx, nq: int, pool_size: int) -> tuple[list[Query], list[Candidate]]:
    """Task 2, EDIS-like: a news line → image + headline card; the line names looks the headline lacks."""
    rng = ctx.rng
    targets, ents = make_entities(ctx, nq, pool_size)
    cards = {e.name: ctx.cand("image,text", e.name, txt=card_text(e, None, "edis"), obj=e.obj, attrs=_attrs(e))
             for e in ents}
    queries = []
    for e in targets:
        facets = unique_facets(e, ents, rng, ["colour", "shape", "place"])
        queries.append(ctx.query(2, "text", cards[e.name], key_of(ctx, cards[e.name]),
                                 txt=facet_query(e, facets, "edis", rng), attrs=_attrs(e)))
    return queries, list(cards.values())


Sets = dict[int, tuple[list[Query], list[Candidate]]]


def entity_image_sets(ctx: Ctx, nq: int, pool_size: int, facts: bool) -> Sets:
    """Tasks 6 and 8 for OVEN-like (facts=False: "what is this?") and InfoSeek-like (a question on one fact)."""
    rng = ctx.rng
    kinds: list[str | None] = list(FACTS) if facts else [None]
    n_ents = max(2 * nq, pool_size // len(kinds))
    targets, ents = make_entities(ctx, 2 * nq, n_ents)
    out: dict[int, tuple[list[Query], list[Candidate]]] = {}
    for task, variant in ((6, 1), (8, 2)):
        pool: dict[tuple[str, str | None], Candidate] = {}
        for e in ents:
            for kind in kinds:
                content = f"{e.name}|{kind or ''}"
                if task == 6:
                    txt = fact_passage(e, kind) if kind else description(e, rng)
                    pool[(e.name, kind)] = ctx.cand("text", content, txt=txt, attrs=_attrs(e, kind))
                else:
                    pool[(e.name, kind)] = ctx.cand("image,text", content, txt=card_text(e, kind, "wiki"),
                                                    obj=e.obj, attrs=_attrs(e, kind))
        queries = []
        for e in (targets[:nq] if task == 6 else targets[nq:]):
            kind = rng.choice(kinds)
            question = rng.choice(FACT_QUESTIONS[kind] if kind else NAME_QUESTIONS)
            pos = pool[(e.name, kind)]
            negs = [c for (name, k), c in pool.items() if name == e.name and k != kind]
            queries.append(ctx.query(task, "image,text", pos, key_of(ctx, pos), txt=question, obj=e.obj,
                                     variant=variant, neg=negs, attrs=_attrs(e, kind)))
        items = list(pool.values())
        rng.shuffle(items)
        out[task] = (queries, items)
    return out
