"""Read and write the M-BEIR file format (UniIR, Wei et al. 2023), unchanged.

Layout under a data root (image paths in every file are relative to the root):

    query/{split}/mbeir_{dataset}_task{N}_{split}.jsonl        queries
    cand_pool/local/mbeir_{dataset}_task{N}[_{split}]_cand_pool.jsonl   a task's own pool
    cand_pool/global/mbeir_union_{split}_cand_pool.jsonl      the union pool (mixed modalities)
    qrels/{split}/mbeir_{dataset}_task{N}_{split}_qrels.txt   "qid 0 did relevance task_id"
    instructions/query_instructions.tsv                       query_modality, cand_modality, dataset name,
                                                              dataset id, prompt_1 … prompt_k

The training data of the real download is laid out differently (see `umr.data.mbeir_sets`):

    query/train/mbeir_{dataset}_train.jsonl                    every task of one dataset, `task_id` on each line
    query/union_train/mbeir_union_up_train.jsonl              all datasets, small ones up-sampled (UniIR)
    cand_pool/global/mbeir_union_train_cand_pool.jsonl        the candidates every training line names

Every reader validates as it goes and raises `MBEIRFormatError` naming the file and line: malformed JSON,
missing keys, a bad modality string, an image that is not on disk, duplicate ids. Unknown ids in qrels or
positive lists are checked where a pool is known (`umr.data.mbeir_sets.load_eval_set`). What UniIR accepts,
umr accepts too: an `image,text` entry whose text is empty (UniIR feeds it an empty string), qrels lines of 4
fields (UniIR itself needs the 5th), and ids that are not `int:int` (UniIR hashes ids to integers and would fail
on them; umr keeps them as strings).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.items import Item
from umr.jsonl import FileLineError
from umr.jsonl import iter_jsonl_at as _iter_jsonl_at

#: M-BEIR task id → (query modality, candidate modality). Task 5 (image → image,text) is unused by M-BEIR.
TASKS: dict[int, tuple[str, str]] = {
    0: ("text", "image"),
    1: ("text", "text"),
    2: ("text", "image,text"),
    3: ("image", "text"),
    4: ("image", "image"),
    6: ("image,text", "text"),
    7: ("image,text", "image"),
    8: ("image,text", "image,text"),
}
#: what an M-BEIR file may declare (`umr.index.base.MODALITIES` adds video, which umr indexes too)
MBEIR_MODALITIES = ("text", "image", "image,text")
SPLITS = ("train", "val", "test")


class MBEIRFormatError(FileLineError):
    """A line of an M-BEIR file is unusable; the message starts with `file:line:`."""


def task_id_for(query_modality: str, cand_modality: str) -> int:
    """The M-BEIR task id of a (query, candidate) modality pair."""
    for tid, pair in TASKS.items():
        if pair == (query_modality, cand_modality):
            return tid
    raise UmrError(f"no M-BEIR task for {query_modality} -> {cand_modality}")


def format_text(text: str | None) -> str:
    """UniIR's text normalisation (`format_string`), which its loaders apply to every query and candidate text.

    Carriage returns removed, outer spaces and double quotes stripped, the first letter upper-cased and a full
    stop added unless the text already ends in . ? or !. Empty or None stays "". The M-BEIR readers pass texts
    unchanged; the lamra and u-marvel recipes normalise inside the model (recipe `text_format: uniir`) and
    `umr eval --format-text` applies this for any model (CLIP-SF as UniIR evaluates it). Applying it twice
    changes nothing.
    """
    text = (text or "").replace("\r", "").strip().strip('"')
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!" else text + "."


def dataset_prefix(ident: str) -> str:
    """The dataset id part of an M-BEIR qid/did ("9:123" → "9")."""
    return ident.split(":", 1)[0]


@dataclass
class Candidate:
    """One pool entry. `img_path` is relative to the data root, as in the files."""

    did: str
    modality: str
    txt: str | None = None
    img_path: str | None = None
    src_content: Any = None
    line: int = 0

    def to_item(self, root: str | Path, formatted: bool = False) -> Item:
        """An Item whose parts follow the declared modality (a stray caption on an image entry is not used).

        formatted=True normalises the text as UniIR does (`format_text`)."""
        return _item(self.did, self.modality, self.txt, self.img_path, root, formatted)

    def to_json(self) -> dict[str, Any]:
        return {"did": self.did, "img_path": self.img_path, "modality": self.modality, "src_content": self.src_content,
                "txt": self.txt}


@dataclass
class Query:
    """One query entry; `task_id` comes from the file name when the line has none."""

    qid: str
    modality: str
    txt: str | None = None
    img_path: str | None = None
    pos: list[str] = field(default_factory=list)
    neg: list[str] = field(default_factory=list)
    task_id: int | None = None
    src_content: Any = None
    line: int = 0

    @property
    def dataset_id(self) -> str:
        return dataset_prefix(self.qid)

    def to_item(self, root: str | Path, instruction: str | None = None, formatted: bool = False) -> Item:
        """The query as an Item; formatted=True normalises its text (and instruction) as UniIR does."""
        if formatted and instruction:
            instruction = format_text(instruction)
        item = _item(self.qid, self.modality, self.txt, self.img_path, root, formatted)
        return item.with_instruction(instruction)

    def to_json(self) -> dict[str, Any]:
        out = {"neg_cand_list": self.neg, "pos_cand_list": self.pos, "qid": self.qid,
               "query_img_path": self.img_path, "query_modality": self.modality,
               "query_src_content": self.src_content, "query_txt": self.txt}
        if self.task_id is not None:
            out["task_id"] = self.task_id
        return out


def _item(ident: str, modality: str, txt: str | None, img_path: str | None, root: str | Path,
          formatted: bool = False) -> Item:
    image = str(Path(root) / img_path) if "image" in modality and img_path else None
    text = (format_text(txt) if formatted else txt) if "text" in modality else None
    return Item(text=text if text and text.strip() else None, image=image, id=ident)  # empty text: image alone


# -- reading ------------------------------------------------------------------------------------------------
def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; malformed JSON raises MBEIRFormatError naming file and line."""
    for lineno, _, obj in _iter_jsonl_at(path, MBEIRFormatError):
        yield lineno, obj


def _check_id(path: Path, lineno: int, value: Any, key: str) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise MBEIRFormatError(path, lineno, f"{key} must be a string 'dataset_id:n', got {value!r}")
    return value


def _check_parts(path: Path, lineno: int, ident: str, modality: Any, txt: Any, img: Any,
                 root: Path | None, check_images: bool) -> None:
    """Modality spelled as M-BEIR spells it, and the parts it names present (image on disk)."""
    if modality not in MBEIR_MODALITIES:
        raise MBEIRFormatError(path, lineno,
                               f"{ident}: bad modality {modality!r}; use one of {list(MBEIR_MODALITIES)}")
    # an "image,text" entry may have an empty text (UniIR embeds it as ""); a "text" one may not
    if modality == "text" and not (isinstance(txt, str) and txt.strip()):
        raise MBEIRFormatError(path, lineno, f"{ident}: modality {modality!r} but no text")
    if txt is not None and not isinstance(txt, str):
        raise MBEIRFormatError(path, lineno, f"{ident}: text must be a string, got {type(txt).__name__}")
    if "image" in modality:
        if not (isinstance(img, str) and img):
            raise MBEIRFormatError(path, lineno, f"{ident}: modality {modality!r} but no image path")
        if check_images and root is not None and not (root / img).is_file():
            raise MBEIRFormatError(path, lineno, f"{ident}: image not found: {root / img}")


def _entries(path: Path, id_key: str, part_keys: tuple[str, str, str], root: str | Path | None,
             check_images: bool, duplicates: bool = False) -> Iterator[tuple[int, dict[str, Any], str, str, Any, Any]]:
    """(line, object, id, modality, txt, img) per line, with the id, duplicates and modality parts checked.

    duplicates=True allows repeated ids (UniIR's up-sampled union training file repeats queries on purpose)."""
    for lineno, _, obj, ident, modality, txt, img in entries_at(path, id_key, part_keys, root, check_images,
                                                                duplicates):
        yield lineno, obj, ident, modality, txt, img


def entries_at(path: Path, id_key: str, part_keys: tuple[str, str, str], root: str | Path | None,
               check_images: bool, duplicates: bool = False,
               ) -> Iterator[tuple[int, int, dict[str, Any], str, str, Any, Any]]:
    """`_entries` with each line's byte offset second: (line, offset, object, id, modality, txt, img)."""
    root_p = Path(root) if root is not None else None
    seen: dict[str, int] = {}
    for lineno, offset, obj in _iter_jsonl_at(path, MBEIRFormatError):
        ident = _check_id(path, lineno, obj.get(id_key), id_key)
        if ident in seen and not duplicates:
            raise MBEIRFormatError(path, lineno, f"duplicate {id_key} {ident!r} (first on line {seen[ident]})")
        seen[ident] = lineno
        modality, txt, img = (obj.get(k) for k in part_keys)
        _check_parts(path, lineno, ident, modality, txt, img, root_p, check_images)
        yield lineno, offset, obj, ident, modality, txt, img


def read_pool(path: str | Path, root: str | Path | None = None, check_images: bool = True) -> list[Candidate]:
    """Candidates of a pool file. Duplicate dids, bad modality, missing image → MBEIRFormatError."""
    path = Path(path)
    return [Candidate(did=did, modality=modality, txt=txt, img_path=img, src_content=obj.get("src_content"),
                      line=lineno)
            for lineno, obj, did, modality, txt, img in _entries(path, "did", ("modality", "txt", "img_path"),
                                                                 root, check_images)]


def read_queries(path: str | Path, root: str | Path | None = None, check_images: bool = True,
                 task_id: int | None = None, duplicates: bool = False) -> list[Query]:
    """Queries of a query file; `task_id` (e.g. from the file name) fills lines that carry none.

    duplicates=True reads files that repeat a qid (`query/union_train/mbeir_union_up_train.jsonl`)."""
    path = Path(path)
    out: list[Query] = []
    parts = ("query_modality", "query_txt", "query_img_path")
    for lineno, obj, qid, modality, txt, img in _entries(path, "qid", parts, root, check_images, duplicates):
        lists = {}
        for key in ("pos_cand_list", "neg_cand_list"):
            value = obj.get(key) or []
            if not isinstance(value, list):
                raise MBEIRFormatError(path, lineno, f"{qid}: {key} must be a list of dids")
            lists[key] = [_check_id(path, lineno, d, key) for d in value]
        tid = obj.get("task_id", task_id)
        out.append(Query(qid=qid, modality=modality, txt=txt, img_path=img, pos=lists["pos_cand_list"],
                         neg=lists["neg_cand_list"], task_id=None if tid is None else int(tid),
                         src_content=obj.get("query_src_content"), line=lineno))
    return out


@dataclass
class Qrels:
    """Relevant dids per qid (relevance > 0), with the line each pair came from for error messages."""

    path: Path
    relevant: dict[str, list[str]] = field(default_factory=dict)
    task_of: dict[str, int] = field(default_factory=dict)
    line_of: dict[tuple[str, str], int] = field(default_factory=dict)


def read_qrels(path: str | Path) -> Qrels:
    """Parse "qid 0 did relevance task_id" lines; relevance 0 lines are kept out of `relevant`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    qrels = Qrels(path=path)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (4, 5):
                raise MBEIRFormatError(path, lineno, f"expected 'qid 0 did relevance task_id', got {line.strip()!r}")
            qid, _, did, rel = parts[:4]
            _check_id(path, lineno, qid, "qid")
            _check_id(path, lineno, did, "did")
            try:
                relevance = int(rel)
                task = int(parts[4]) if len(parts) == 5 else None
            except ValueError as exc:
                raise MBEIRFormatError(path, lineno, f"relevance and task_id must be integers: {line.strip()!r}") \
                    from exc
            if (qid, did) in qrels.line_of:
                raise MBEIRFormatError(path, lineno, f"duplicate pair {qid} {did} "
                                                     f"(first on line {qrels.line_of[(qid, did)]})")
            qrels.line_of[(qid, did)] = lineno
            if task is not None:
                qrels.task_of.setdefault(qid, task)
            if relevance > 0:
                qrels.relevant.setdefault(qid, []).append(did)
    return qrels


def read_instructions(path: str | Path) -> dict[tuple[str, str, str], list[str]]:
    """Prompts keyed by (dataset id, query modality, candidate modality); the header line is skipped."""
    path = Path(path)
    table: dict[tuple[str, str, str], list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno == 1 or not line.strip():
                continue
            parts = line.rstrip("\n").rstrip("\r").split("\t")
            if len(parts) < 5:
                raise MBEIRFormatError(path, lineno, "expected query_modality, cand_modality, dataset, dataset_id "
                                                     "and at least one prompt, tab-separated")
            qmod, cmod, _name, dsid = (p.strip() for p in parts[:4])
            for mod in (qmod, cmod):
                if mod not in MBEIR_MODALITIES:
                    raise MBEIRFormatError(path, lineno, f"bad modality {mod!r}; use one of {list(MBEIR_MODALITIES)}")
            table[(dsid, qmod, cmod)] = [p.strip() for p in parts[4:] if p.strip()]
    return table


# -- writing (deterministic: sorted keys, fixed separators, "\n" line ends) -------------------------------------
def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(_dump(row) + "\n")
    return path


def write_pool(path: str | Path, cands: Iterable[Candidate]) -> Path:
    return write_jsonl(path, (c.to_json() for c in cands))


def write_queries(path: str | Path, queries: Iterable[Query]) -> Path:
    return write_jsonl(path, (q.to_json() for q in queries))


def write_qrels(path: str | Path, queries: Iterable[Query]) -> Path:
    """One "qid 0 did 1 task_id" line per positive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for q in queries:
            for did in q.pos:
                fh.write(f"{q.qid} 0 {did} 1 {q.task_id}\n")
    return path


def write_instructions(path: str | Path, rows: Iterable[tuple[str, str, str, str, list[str]]]) -> Path:
    """rows: (query modality, cand modality, dataset name, dataset id, prompts)."""
    path = Path(path)
    rows = list(rows)
    width = max((len(r[4]) for r in rows), default=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        header = ["query_modality", "cand_modality", "dataset_name", "dataset_id"]
        fh.write("\t".join(header + [f"prompt_{i + 1}" for i in range(width)]) + "\n")
        for qmod, cmod, name, dsid, prompts in rows:
            fh.write("\t".join([qmod, cmod, name, dsid, *prompts, *[""] * (width - len(prompts))]) + "\n")
    return path
