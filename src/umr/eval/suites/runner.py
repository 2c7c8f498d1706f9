"""What every benchmark suite shares: options, results, file reading with `file:line` errors, embedding, scoring.

A suite module defines ``run(embedder, data_dir, opts) -> SuiteResult``; `umr.eval.suites.run_suite` finds it by
name. Results are rows (a split, a category, a task, a direction) of named metrics in [0, 1] (ranks excepted),
printed as one table and written as JSON/CSV by `umr.eval.suites.report`.
"""

from __future__ import annotations

import gc
import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

#: queries per block of the score matrix: [chunk, n_cands] float64 stays small even for a 120k-image corpus
QUERY_CHUNK = 256
#: candidates converted to float64 at a time
CAND_CHUNK = 16384
#: scores are rounded to this many decimals so that equal vectors tie exactly whatever BLAS blocking did
SCORE_DECIMALS = 9


@dataclass
class SuiteOptions:
    """Settings of one suite run (every field has a CLI flag in `umr eval-suite`)."""

    split: str | None = None  # None = the suite's usual evaluation split (test, or val where test is hidden)
    instructions: bool = True  # give queries the suite's task instruction (every reference recipe does)
    batch_size: int = 16  # items per forward pass
    max_queries: int | None = None  # evaluate only the first N queries (smoke runs); None = all
    exclude_reference: bool | None = None  # composed retrieval: drop the reference image; None = suite default
    categories: list[str] | None = None  # FashionIQ categories / MMEB tasks to run; None = all found
    video_mode: str = "auto"  # "native": the model embeds the frames itself; "mean": mean of frame embeddings
    frames: int = 8  # frames sampled uniformly per video ("mean" mode; the model's own setting in "native")
    folds: int = 5  # COCO: the 5k test split is also scored as this many folds (COCO 1k = mean of 5 folds)
    ties: str = "pool-order"  # "pool-order": of equal scores the earlier candidate ranks higher (the project's rule);
    #                         "pessimistic": every tie counts against the positive (umr's rule before, to compare)
    captions_per_image: int | None = 5  # Karpathy: the first N captions (5: VSE++); None = all (BLIP, ALBEF)
    caption_join: str = "searle"  # FashionIQ: how the two captions become one text ("searle" or "clip4cir")
    show_progress: bool = False


@dataclass
class Row:
    """One line of the results table: a split / category / task / direction and its metrics."""

    name: str
    metrics: dict[str, float]
    n_queries: int = 0
    n_candidates: int = 0  # corpus size, or candidates per query (MMEB: the mean)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SuiteResult:
    suite: str
    data: str
    rows: list[Row]
    model: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: file name → JSON object for a test split's evaluation server (written beside results.json, not inside it)
    submissions: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    @property
    def columns(self) -> list[str]:
        """Metric names in first-seen order over all rows."""
        return list(dict.fromkeys(k for r in self.rows for k in r.metrics))

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "data": self.data, "model": self.model, "options": self.options,
                "timings": self.timings, "notes": self.notes, "rows": [r.to_dict() for r in self.rows]}


# -- reading annotation files ------------------------------------------------------------------------------------
#: JSON whitespace, as the json module itself skips it (a regex runs in C; a Python loop per character does not)
_WS = re.compile(r"[ \t\n\r]*")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while annotation records are built and used.

    A 120k-image Karpathy file is a few million small dicts and lists, none of them cyclic (reference counting
    frees them): with the collector on, each collection rescans the growing heap, and the first one after the
    load scans it all again (loading the real-size COCO file took 1.8× as long). Nested uses are fine.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Lines:
    """1-based line of an offset in `text`, for offsets visited in increasing order: each call counts only the
    newlines since the previous one, so numbering every record of a file costs one pass over it (counting from
    the file start for each record made a 120k-record file take an hour)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self.pos:  # never happens in a forward scan; stay correct anyway
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


class _Scan:
    """A forward walk over one JSON text with `file:line` errors; every value is decoded once, by the C decoder."""

    def __init__(self, text: str, path: Path) -> None:
        self.text, self.path, self.dec, self.lines = text, path, json.JSONDecoder(), _Lines(text)

    def ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()

    def fail(self, pos: int, problem: str) -> FileLineError:
        return FileLineError(self.path, self.text.count("\n", 0, pos) + 1, problem)  # only on error: O(n) once

    def value(self, pos: int) -> tuple[Any, int]:
        try:
            return self.dec.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise FileLineError(self.path, exc.lineno, f"malformed JSON ({exc.msg})") from exc

    def expect(self, pos: int, chars: str, what: str) -> tuple[str, int]:
        """The character at pos (after whitespace), which must be one of `chars`."""
        pos = self.ws(pos)
        if pos >= len(self.text) or self.text[pos] not in chars:
            raise self.fail(pos, f"malformed JSON (expected {what})")
        return self.text[pos], pos + 1

    def array(self, pos: int) -> tuple[list[tuple[int, Any]], int]:
        """(line, element) of the array whose '[' is at pos, and the offset after its ']'."""
        out: list[tuple[int, Any]] = []
        pos = self.ws(pos + 1)
        if self.text.startswith("]", pos):
            return out, pos + 1
        while True:
            pos = self.ws(pos)
            value, end = self.value(pos)
            out.append((self.lines(pos), value))
            char, pos = self.expect(end, ",]", "',' or ']' in the array")
            if char == "]":
                return out, pos

    def end(self, pos: int) -> None:
        if self.ws(pos) != len(self.text):
            raise self.fail(self.ws(pos), "malformed JSON (extra data after the top-level value)")


def json_records(path: str | Path, key: str | None = None) -> list[tuple[int, Any]]:
    """(line, element) for each element of a JSON file's top-level array, or of the array under top-level `key`.

    The line numbers let errors point at the record (`file:line: ...`). One linear pass: each value is decoded
    once and lines are counted incrementally. Raises FileNotFoundError for a missing file and FileLineError for
    malformed JSON or a missing key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with paused_gc():
        return _records(path, key)


def _records(path: Path, key: str | None) -> list[tuple[int, Any]]:
    scan = _Scan(path.read_text(encoding="utf-8"), path)
    text, pos = scan.text, scan.ws(0)
    if key is None:
        if not text.startswith("[", pos):
            value, end = scan.value(pos)  # malformed JSON fails here, naming its line
            scan.end(end)
            raise FileLineError(path, 1, f"expected a JSON array, got {type(value).__name__}")
        records, end = scan.array(pos)
        scan.end(end)
        return records
    if not text.startswith("{", pos):
        value, end = scan.value(pos)
        scan.end(end)
        raise FileLineError(path, 1, f"expected a JSON object with an array under {key!r}")
    found: list[tuple[int, Any]] | None = None
    pos = scan.ws(pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:  # walk every member (a duplicate key: the last one wins, as in json.loads)
            name, pos = scan.value(scan.ws(pos))
            if not isinstance(name, str):
                raise scan.fail(pos, "malformed JSON (expected a member name)")
            _, pos = scan.expect(pos, ":", "':' after a member name")
            pos = scan.ws(pos)
            if name == key and text.startswith("[", pos):
                found, pos = scan.array(pos)
            else:
                if name == key:
                    found = None
                _, pos = scan.value(pos)
            char, pos = scan.expect(pos, ",}", "',' or '}' in the object")
            if char == "}":
                break
    scan.end(pos)
    if found is None:
        raise FileLineError(path, 1, f"expected a JSON object with an array under {key!r}")
    return found


def require(record: Any, fields: dict[str, type | tuple[type, ...]], path: Path, line: int, what: str) -> None:
    """Check that a record is an object with each field of the given type; else FileLineError naming it."""
    if not isinstance(record, dict):
        raise FileLineError(path, line, f"{what}: expected a JSON object, got {type(record).__name__}")
    for name, types in fields.items():
        if name not in record:
            raise FileLineError(path, line, f"{what}: missing field {name!r}")
        if not isinstance(record[name], types):
            raise FileLineError(path, line, f"{what}: field {name!r} should be "
                                f"{getattr(types, '__name__', types)}, got {type(record[name]).__name__}")


def find_file(names: Sequence[str | Path], roots: Sequence[Path], path: Path, line: int | None,
              what: str) -> Path:
    """The first existing root/name; else a FileLineError naming the record and every place looked in."""
    tried = []
    for root in roots:
        for name in names:
            candidate = Path(root) / name
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    shown = ", ".join(tried[:4]) + (f" (+{len(tried) - 4} more)" if len(tried) > 4 else "")
    raise FileLineError(path, line, f"{what}: file not found; looked for {shown}")


def first_file(data: Path, names: Sequence[str], what: str) -> Path:
    """The first of data/<name> that exists; else FileNotFoundError listing them."""
    for name in names:
        if (data / name).is_file():
            return data / name
    raise FileNotFoundError(f"{data}: no {what} found (looked for {', '.join(names)})")


# -- embedding and scoring ---------------------------------------------------------------------------------------
def encode(embedder: Embedder, items: Sequence[Item], opts: SuiteOptions, instruction: str | None = None,
           query: bool = False) -> np.ndarray:
    """float32 [n, d]; queries get `instruction` when opts.instructions, candidates none. Identical items once."""
    if not items:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    keys = [(it.id, it.text, str(it.image), str(it.video)) for it in items]
    first: dict[tuple, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    pick = [items[i] for i in first.values()]
    row_of = {k: j for j, k in enumerate(first)}
    if query:
        emb = embedder.encode_query(pick, instruction=instruction if opts.instructions else None,
                                      batch_size=opts.batch_size, show_progress=opts.show_progress)
    else:
        emb = embedder.encode_document(pick, batch_size=opts.batch_size, show_progress=opts.show_progress)
    return emb[[row_of[k] for k in keys]]


def score_blocks(queries: np.ndarray, cands: np.ndarray, chunk: int = QUERY_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """(first query row, scores float64 [≤ chunk, n_cands]) blocks of queries · candidatesᵀ, rounded (ties exact).

    Candidates are converted to float64 a slice at a time, so a 120k × 3584 corpus never exists twice in memory.
    """
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start:start + chunk], dtype=np.float64)
        parts = [q @ np.asarray(cands[a:a + CAND_CHUNK], dtype=np.float64).T
                 for a in range(0, max(len(cands), 1), CAND_CHUNK)]
        yield start, np.round(np.concatenate(parts, axis=1), SCORE_DECIMALS)


def limit(records: list, opts: SuiteOptions) -> list:
    return records if opts.max_queries is None else records[:opts.max_queries]


class Timer:
    """Accumulates named wall-clock durations: `with timer("embed_s"): ...`."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._name = ""

    def __call__(self, name: str) -> Timer:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.totals[self._name] = self.totals.get(self._name, 0.0) + time.perf_counter() - self._start

    def done(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.totals.items()},
                "total_s": round(time.perf_counter() - self._t0, 3)}
