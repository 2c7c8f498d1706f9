"""GME's fused-modal data synthesis, end to end: sources → generate → de-duplicate → filter → M-BEIR root.

    report = synthesize(SynthConfig(source="data/world", out="data/synth", filter_model="runs/base/final"))
    print(report.table())

Resumable: generated queries go to OUT/progress/generated-*.jsonl and filter ranks to OUT/progress/filter-*.jsonl
as they are made, so a rerun does only the work that is missing and writes byte-identical files.
Counts per kind (sources, generated, failed, duplicates, filtered out, kept) go to OUT/synthesis.json.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from umr.data.mbeir import Candidate, Query
from umr.errors import UmrError
from umr.items import Item
from umr.synthesis.dedup import Deduper
from umr.synthesis.factory import make_generator
from umr.synthesis.filter import embed_pool, pool_fingerprint, positive_ranks
from umr.synthesis.generators import Generator, Request
from umr.synthesis.kinds import Kind, parse_kinds
from umr.synthesis.progress import Progress
from umr.synthesis.sources import Source, load_sources
from umr.synthesis.writer import write_root

COUNT_KEYS = ("sources", "generated", "failed", "duplicates", "filtered_out", "kept")


@dataclass
class SynthConfig:
    source: str  # an M-BEIR root (its `split`) or a folder of images with optional caption sidecars
    out: str  # the M-BEIR root to write (progress files live in OUT/progress)
    generator: str = "rule"  # "rule" or an HF causal LM / Qwen2-VL-family MLLM (hub id or folder)
    generator_options: dict[str, Any] = field(default_factory=dict)  # HFGenerator keywords (max_new_tokens, …)
    filter_model: str | None = None  # retriever of the consistency filter; None = keep every new query
    top_k: int = 5  # keep a query when the filter ranks its positive within the top k of the kind's pool
    kinds: list[str] | None = None  # some of it2t, it2it, t2it; None = all three
    limit: int | None = None  # use at most this many sources (a seeded sample; None = all)
    split: str = "train"  # M-BEIR source split: synthesise from training data only
    seed: int = 0  # source sample and generator choices
    dataset_id_base: int = 90  # dataset ids base, base+1, base+2: clear of the world's 0-9 and M-BEIR's
    batch_size: int = 16  # filter embedding batch
    chunk: int = 64  # requests per generator call and per progress flush (the most a crash can lose)
    # query image of a kind whose positive has the same image (it2it): "mirror" = a left-right mirrored copy
    # (OUT/images/query-mirror/…), so matching the query to its positive takes more than finding the identical
    # picture; "same" = the positive's own image (a copy shortcut)
    query_image: str = "mirror"


@dataclass
class SynthReport:
    counts: dict[str, dict[str, int]]  # kind → COUNT_KEYS
    no_text: int  # sources skipped because they have no text (every positive needs one)
    generated_now: int  # generator requests made by this run (0 on a finished rerun)
    ranked_now: int  # queries the filter ranked in this run
    seconds: float
    out: str

    def table(self) -> str:
        """The per-step counts as a fixed-width table (one row per kind, then the total)."""
        rows = [(k, *(c[key] for key in COUNT_KEYS)) for k, c in self.counts.items()]
        rows.append(("total", *(sum(c[key] for c in self.counts.values()) for key in COUNT_KEYS)))
        head = ("kind", *COUNT_KEYS)
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
                 for r in [head, *rows]]
        return "\n".join(lines)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")[-60:] or "model"


def select_sources(sources: list[Source], limit: int | None, seed: int) -> list[Source]:
    """At most `limit` sources, a seeded sample that keeps the original order."""
    if limit is None or limit >= len(sources):
        return sources
    keep = sorted(random.Random(seed).sample(range(len(sources)), limit))
    return [sources[i] for i in keep]


def _positive(kind: Kind, src: Source) -> tuple[str, str, str | None]:
    """(content key, text, image_rel) of the candidate a source gives a kind."""
    image = src.image_rel if kind.cand_has_image else None
    return f"{image}\x00{src.text}", src.text or "", image


def _generate(gen: Generator, sources: list[Source], kinds: list[Kind], prog: Progress, seed: int,
              chunk: int) -> int:
    todo = [Request(s, k, seed) for s in sources for k in kinds if (s.sid, k.name) not in prog]
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        texts = gen.generate(batch)
        prog.add({"sid": r.source.sid, "kind": r.kind.name, "query": (t or "").strip() or None}
                 for r, t in zip(batch, texts, strict=True))
    return len(todo)


def synthesize(cfg: SynthConfig, generator: Generator | None = None, filter_embedder: Any = None) -> SynthReport:
    """Run (or resume) the pipeline; `generator` / `filter_embedder` objects override the names in cfg."""
    t0 = time.perf_counter()
    out = Path(cfg.out)
    kinds = parse_kinds(cfg.kinds)
    all_sources = load_sources(cfg.source, cfg.split)
    with_text = [s for s in all_sources if s.text]
    sources = select_sources(with_text, cfg.limit, cfg.seed)
    gen = generator or make_generator(cfg.generator, **cfg.generator_options)
    gen_prog = Progress(out / "progress" / f"generated-{_slug(gen.name)}-seed{cfg.seed}.jsonl", ("sid", "kind"))
    generated_now = _generate(gen, sources, kinds, gen_prog, cfg.seed, cfg.chunk)

    filter_name = cfg.filter_model
    if filter_embedder is not None and filter_name is None:
        filter_name = json.dumps(filter_embedder.describe(), sort_keys=True, default=str)
    loaded: list[Any] = [filter_embedder]

    def embedder() -> Any:
        """The filter model, loaded on first use (a finished rerun never loads it)."""
        if loaded[0] is None:
            from umr.models.registry import load_embedder

            loaded[0] = load_embedder(cfg.filter_model, data_root=cfg.source)
        return loaded[0]

    counts: dict[str, dict[str, int]] = {}
    sets: dict[Kind, tuple[list[Query], list[Candidate]]] = {}
    images: dict[str, Path] = {}
    ranked_now = 0
    if cfg.query_image not in ("same", "mirror"):
        raise UmrError(f"query_image must be 'same' or 'mirror', not {cfg.query_image!r}")
    for kind in kinds:
        pool, pos_of = _pool(kind, sources, cfg.dataset_id_base)
        c, drafts = _dedup(kind, sources, gen_prog)
        qimg = _QueryImages(kind, cfg, out)
        if filter_name is not None and drafts:
            ranks, n = _filter_ranks(kind, drafts, pool, pos_of, embedder, filter_name or "", out, cfg, qimg)
            ranked_now += n
            kept = [(s, t) for (s, t), r in zip(drafts, ranks, strict=True) if r <= cfg.top_k]
        else:
            kept = drafts
        c["filtered_out"], c["kept"] = len(drafts) - len(kept), len(kept)
        counts[kind.name] = c
        dsid = kind.dataset_id(cfg.dataset_id_base)
        queries = []
        for n, (s, t) in enumerate(kept, 1):
            img = qimg.get(s)
            queries.append(Query(qid=f"{dsid}:{n}", modality=kind.query_modality, txt=t,
                                 img_path=img[0] if img else None, pos=[pool[pos_of[s.sid]][0].did],
                                 task_id=kind.task_id, src_content={"source": s.sid, "generator": gen.name}))
            if img:
                images[img[0]] = img[1]
        for cand, src in pool.values():
            if cand.img_path:
                images[cand.img_path] = src.image
        sets[kind] = (queries, [cand for cand, _ in pool.values()])
    write_root(out, cfg.split, cfg.dataset_id_base, sets, images)
    seconds = time.perf_counter() - t0
    report = SynthReport(counts, len(all_sources) - len(with_text), generated_now, ranked_now, seconds, str(out))
    summary = {"format": "umr-synthesis/1", "config": asdict(cfg), "generator": gen.name, "filter": filter_name,
               "no_text": report.no_text, "counts": counts}
    (out / "synthesis.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (out / "progress" / "last_run.json").write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")
    return report


def _pool(kind: Kind, sources: list[Source], base: int) -> tuple[dict[str, tuple[Candidate, Source]], dict[str, str]]:
    """The kind's candidates (one per distinct positive content, in source order, with the source that gave it)
    and each source's positive's key."""
    dsid = kind.dataset_id(base)
    pool: dict[str, tuple[Candidate, Source]] = {}
    pos_of: dict[str, str] = {}
    for s in sources:
        key, text, image = _positive(kind, s)
        if key not in pool:
            cand = Candidate(did=f"{dsid}:{len(pool) + 1}", modality=kind.cand_modality, txt=text, img_path=image,
                             src_content={"source": s.sid})
            pool[key] = (cand, s)
        pos_of[s.sid] = key
    return pool, pos_of


def _dedup(kind: Kind, sources: list[Source], gen_prog: Progress) -> tuple[dict[str, int], list[tuple[Source, str]]]:
    """Counts so far and the (source, query) drafts left after dropping failures and duplicates."""
    c = dict.fromkeys(COUNT_KEYS, 0)
    c["sources"] = len(sources)
    drafts: list[tuple[Source, str]] = []
    dedup = Deduper()
    for s in sources:
        text = gen_prog.get((s.sid, kind.name))["query"]
        if not text:
            c["failed"] += 1
            continue
        c["generated"] += 1
        # an image query is the same query only for the same image; a text query is the same everywhere
        if dedup.check(text, s.image_rel if kind.query_has_image else None) != "new":
            c["duplicates"] += 1
            continue
        drafts.append((s, text))
    return c, drafts


class _QueryImages:
    """A kind's query image for a source: (image_rel, file), or None for a text query. With query_image "mirror"
    a kind whose positive shows the same image gets a mirrored copy, written under OUT on first use."""

    def __init__(self, kind: Kind, cfg: SynthConfig, out: Path) -> None:
        self.kind, self.out = kind, out
        self.mirror = kind.query_has_image and kind.cand_has_image and cfg.query_image == "mirror"

    def get(self, s: Source) -> tuple[str, Path] | None:
        if not self.kind.query_has_image:
            return None
        if not self.mirror:
            return s.image_rel, s.image
        rel = "images/query-mirror/" + s.image_rel.removeprefix("images/")
        path = self.out / rel
        if not path.is_file():
            from PIL import Image, ImageOps

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with Image.open(s.image) as im:
                ImageOps.mirror(im.convert("RGB")).save(tmp, format="PNG")
            tmp.replace(path)
        return rel, path


def _query_item(kind: Kind, s: Source, text: str, qimg: _QueryImages) -> Item:
    img = qimg.get(s)
    return Item(text=text, image=str(img[1]) if img else None, instruction=kind.instructions[0], id=s.sid)


def _cand_item(cand: Candidate, src: Source) -> Item:
    return Item(text=cand.txt, image=str(src.image) if cand.img_path else None, id=cand.did)


def _filter_ranks(kind: Kind, drafts: list[tuple[Source, str]], pool: dict[str, tuple[Candidate, Source]],
                  pos_of: dict[str, str], embedder: Callable[[], Any], filter_name: str, out: Path,
                  cfg: SynthConfig, qimg: _QueryImages) -> tuple[list[int], int]:
    """The positive's rank for every draft (resumed from the kind's filter progress file) and how many were new."""
    keys = list(pool)
    fp = pool_fingerprint(filter_name, keys)
    view = "-mirror" if qimg.mirror else ""  # the ranks depend on the query image too
    prog = Progress(out / "progress" / f"filter-{kind.name}{view}-{fp}.jsonl", ("sid", "query"))
    missing = [(s, t) for s, t in drafts if (s.sid, t) not in prog]
    if missing:
        row_of = {k: i for i, k in enumerate(keys)}
        pool_emb = embed_pool(embedder(), [_cand_item(c, s) for c, s in pool.values()],
                              out / "progress" / f"filter-{kind.name}-{fp}-pool.npy", cfg.batch_size)
        step = cfg.chunk * 4
        for start in range(0, len(missing), step):
            part = missing[start:start + step]
            ranks = positive_ranks(embedder(), [_query_item(kind, s, t, qimg) for s, t in part],
                                   [row_of[pos_of[s.sid]] for s, _ in part], pool_emb, cfg.batch_size)
            prog.add({"sid": s.sid, "query": t, "rank": r} for (s, t), r in zip(part, ranks, strict=True))
    return [prog.get((s.sid, t))["rank"] for s, t in drafts], len(missing)
