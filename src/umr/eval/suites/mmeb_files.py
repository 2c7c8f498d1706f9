"""MMEB's files as published: task records from parquet / JSONL / JSON, images from a folder or ``images.zip``.

``TIGER-Lab/MMEB-eval`` on the Hugging Face hub holds one folder per task with its ``test`` split as parquet
(``<Task>/test-00000-of-00001.parquet``, columns ``qry_text``, ``qry_img_path``, ``tgt_text``, ``tgt_img_path``,
the names VLM2Vec's ``EvalDataset`` reads) and every image in ``images.zip`` (paths inside ``<Task>/...``, the
``qry_img_path`` / ``tgt_img_path`` values; VLM2Vec unzips it into ``eval_images/``). Both the zip and the
unzipped folder work here: a path is looked for on disk first, then in the zip (at its root or under one
top-level folder), and a zip member is extracted into a scratch folder the first time a task needs it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from umr.eval.suites.runner import json_records
from umr.jsonl import FileLineError, iter_jsonl

#: the columns of an MMEB-eval task (VLM2Vec's EvalDataset: (qry_text, qry_img_path) and (tgt_text, tgt_img_path))
COLUMNS = ("qry_text", "qry_img_path", "tgt_text", "tgt_img_path")
ZIP_NAMES = ("images.zip", "eval_images.zip")


def find_tasks(data: Path) -> dict[str, list[Path]]:
    """Task name → its record files: ``<Task>.jsonl`` / ``<Task>.json``, or the parquet shards in ``<Task>/``."""
    tasks: dict[str, list[Path]] = {}
    for p in sorted(data.iterdir()):
        if p.is_file() and p.suffix in (".json", ".jsonl"):
            tasks[p.stem] = [p]
        elif p.is_dir() and (shards := sorted(p.glob("*.parquet"))):
            tasks[p.name] = shards
    return tasks


def read_parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(row, record) per row of one parquet shard (rows numbered from 1, so errors read ``file.parquet:row``)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # an optional dependency: only MMEB's published files need it
        raise ImportError("reading MMEB's parquet files needs pyarrow: pip install 'umr[parquet]'") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file; say which file
        raise FileLineError(path, None, f"not a readable parquet file ({exc})") from exc
    missing = [c for c in ("qry_text", "tgt_text") if c not in table.column_names]
    if missing:
        raise FileLineError(path, None, f"no column {missing[0]!r} (MMEB-eval's columns: {', '.join(COLUMNS)}; "
                            f"this file has {', '.join(table.column_names)})")
    cols = [c for c in COLUMNS if c in table.column_names]
    return [(i + 1, rec) for i, rec in enumerate(table.select(cols).to_pylist())]


def task_records(files: list[Path]) -> Iterator[tuple[Path, int, Any]]:
    """(file, line or row, record) over a task's files, in order."""
    for path in files:
        if path.suffix == ".parquet":
            rows = read_parquet(path)
        elif path.suffix == ".jsonl":
            rows = list(iter_jsonl(path))
        else:
            rows = json_records(path)
        for line, rec in rows:
            yield path, line, rec


class Images:
    """Finds MMEB image paths under the data folder, or in its ``images.zip`` (extracted on first use)."""

    def __init__(self, data: Path, scratch: Path) -> None:
        self.roots = [data, data / "eval_images", data / "images"]
        self.scratch = scratch
        self.zip_path = next((data / n for n in ZIP_NAMES if (data / n).is_file()), None)
        self._zip: zipfile.ZipFile | None = None
        self._members: set[str] = set()
        self._prefixes: list[str] = []
        self._found: dict[str, Path] = {}

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.zip_path)
            self._members = set(self._zip.namelist())
            # the images may sit at the zip's root or under one folder (eval_images/<Task>/...)
            self._prefixes = [""] + sorted({n.split("/", 1)[0] + "/" for n in self._members if "/" in n})
        return self._zip

    def find(self, rel: str, path: Path, line: int | None, what: str) -> Path:
        """The file for an image path of a record; else a FileLineError naming the record and where it looked."""
        if rel in self._found:
            return self._found[rel]
        for root in self.roots:
            if (root / rel).is_file():
                self._found[rel] = root / rel
                return root / rel
        tried = [str(r / rel) for r in self.roots]
        if self.zip_path is not None:
            archive = self._open()
            member = next((p + rel for p in self._prefixes if p + rel in self._members), None)
            if member is not None:
                self._found[rel] = Path(archive.extract(member, self.scratch))
                return self._found[rel]
            tried.append(f"{self.zip_path.name}:{rel}")
        raise FileLineError(path, line, f"{what}: file not found; looked for {', '.join(tried)}")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@contextmanager
def images_of(data: Path) -> Iterator[Images]:
    """An Images finder whose extracted files live until the block ends (the suite embeds inside it)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="umr-mmeb-") as scratch:
        images = Images(data, Path(scratch))
        try:
            yield images
        finally:
            images.close()
