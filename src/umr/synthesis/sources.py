"""Sources of synthesis: an image with the text that goes with it (caption, passage, card).

Two places to read them from:

  - an M-BEIR data root (e.g. the offline world): one split only (default train — never synthesise from test),
    taking every pool entry that has both an image and a text, plus every query → positive pair whose one side is
    an image and the other a text (caption → image, image → caption, image + question → passage);
  - a folder of images, each with an optional caption sidecar: `photo.txt` (the caption) or `photo.json`
    (`{"text": …}` or `{"caption": …}`). Images without one are kept as text-less sources, which the pipeline
    counts and skips (every kind's positive has a text part).

Sources are de-duplicated by (image path, normalised text) and keep a stable order, so reruns see the same list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from umr.errors import UmrError
from umr.synthesis.dedup import normalise

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


@dataclass(frozen=True)
class Source:
    """One image (+ text). `image` is the file on disk; `image_rel` is where the output root keeps it."""

    sid: str
    image: Path
    image_rel: str
    text: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"sid": self.sid, "image": str(self.image), "image_rel": self.image_rel, "text": self.text}


def _unique(sources: Iterable[Source]) -> list[Source]:
    seen: set[tuple[str, str]] = set()
    out = []
    for s in sources:
        key = (s.image_rel, normalise(s.text or ""))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def sources_from_mbeir(root: str | Path, split: str = "train") -> list[Source]:
    """Image + text sources of one split of an M-BEIR root (pool entries first, then query pairs)."""
    from umr.data.mbeir import read_pool, read_queries
    from umr.data.mbeir_sets import find_eval_sets, global_pool_file

    root = Path(root)
    refs = find_eval_sets(root, split)
    union = global_pool_file(root, split)
    pool_files = [union] if union.is_file() else sorted({r.local_pool_file for r in refs})
    pool = {c.did: c for f in pool_files for c in read_pool(f, root=root, check_images=False)}

    def make(sid: str, img: str, text: str | None) -> Source:
        return Source(sid, root / img, img, text)

    out = [make(f"pool:{c.did}", c.img_path, c.txt) for c in pool.values()
           if c.modality == "image,text" and c.img_path and c.txt]
    for ref in refs:
        for q in read_queries(ref.query_file, root=root, check_images=False, task_id=ref.task_id):
            pos = pool.get(q.pos[0]) if q.pos else None
            if pos is None:
                continue
            if "image" in q.modality and pos.modality == "text":  # image (+ question) → caption / passage
                out.append(make(f"query:{q.qid}", q.img_path, pos.txt))
            elif q.modality == "text" and pos.modality == "image":  # caption → image
                out.append(make(f"query:{q.qid}", pos.img_path, q.txt))
    return _unique(out)


def _sidecar_text(image: Path) -> str | None:
    txt, js = image.with_suffix(".txt"), image.with_suffix(".json")
    if txt.is_file():
        text = txt.read_text(encoding="utf-8").strip()
        return text or None
    if js.is_file():
        obj = json.loads(js.read_text(encoding="utf-8"))
        if not isinstance(obj, dict):
            raise UmrError(f"{js}: a caption sidecar is a JSON object with a 'text' or 'caption' key")
        text = obj.get("text", obj.get("caption"))
        return text.strip() or None if isinstance(text, str) else None
    return None


def sources_from_folder(folder: str | Path) -> list[Source]:
    """Every image under `folder` (recursive, sorted by path) with its sidecar caption, if any."""
    folder = Path(folder)
    images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for path in images:
        rel = path.relative_to(folder).as_posix()
        out.append(Source(f"file:{rel}", path, f"images/{rel}", _sidecar_text(path)))
    return _unique(out)


def load_sources(source: str | Path, split: str = "train") -> list[Source]:
    """An M-BEIR root (it has a query/ folder) or a folder of images."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (give an M-BEIR root or a folder of images)")
    if (source / "query").is_dir():
        return sources_from_mbeir(source, split)
    found = sources_from_folder(source)
    if not found:
        raise UmrError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) and no query/ folder")
    return found
