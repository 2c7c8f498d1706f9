"""`umr embed`: the CLI end to end on a tiny model, bad inputs, --skip-bad and resume."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from umr.cli import main


def huge_png_header(path: Path, side: int = 20000) -> None:
    """A PNG that declares side×side pixels: tiny on disk, must be refused before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    Image.new("RGB", (64, 48), "red").save(tmp_path / "red.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage bytes")
    (tmp_path / "empty.png").write_bytes(b"")
    huge_png_header(tmp_path / "huge.png")
    rows = [
        {"id": "d1", "text": "a red circle"},
        {"id": "d2", "image": "red.png"},
        {"id": "d3", "text": "red thing", "image": "red.png"},
        {"id": "bad-corrupt", "image": "corrupt.png"},
        {"id": "bad-missing", "image": "nowhere.png"},
        {"id": "bad-empty", "image": "empty.png"},
        {"id": "bad-huge", "image": "huge.png"},
        {"id": "d4", "text": "a blue square"},
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_item_fails_naming_it(corpus: Path, tmp_path: Path, capsys, tiny_model) -> None:
    rc = main(["embed", "--model", tiny_model, "--input", str(corpus), "--out", str(tmp_path / "job")])
    assert rc == 2
    assert "bad-corrupt" in capsys.readouterr().err


def test_skip_bad_writes_rejected_and_finishes(corpus: Path, tmp_path: Path, tiny_model) -> None:
    out = tmp_path / "job"
    assert main(["embed", "--model", tiny_model, "--input", str(corpus), "--out", str(out), "--skip-bad",
                 "--shard-size", "2"]) == 0
    rejected = {json.loads(line)["id"]: json.loads(line)["error"] for line in (out / "rejected.jsonl").open()}
    assert set(rejected) == {"bad-corrupt", "bad-missing", "bad-empty", "bad-huge"}
    assert "not found" in rejected["bad-missing"] and "0 bytes" in rejected["bad-empty"]
    assert "over the pixel limit" in rejected["bad-huge"]
    vecs = np.load(out / "embeddings.npy")
    ids = [json.loads(line)["id"] for line in (out / "ids.jsonl").open()]
    assert ids == ["d1", "d2", "d3", "d4"] and vecs.shape[0] == 4
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    # A rerun resumes: nothing is re-embedded and the output is byte-identical.
    before = (out / "embeddings.npy").read_bytes()
    assert main(["embed", "--model", tiny_model, "--input", str(corpus), "--out", str(out), "--skip-bad"]) == 0
    assert (out / "embeddings.npy").read_bytes() == before


def test_malformed_jsonl_names_line(tmp_path: Path, capsys, tiny_model) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n')
    assert main(["embed", "--model", tiny_model, "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err


def test_recipes_command(capsys) -> None:
    assert main(["recipes", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"gme", "u-marvel", "lamra", "mm-embed", "clip-sf", "text"} <= names


def test_role_query_embeds_each_item_with_its_own_instruction(tmp_path: Path, tiny_model: str) -> None:
    from umr import Item, load_embedder

    items = [Item(text="a red circle", instruction="Find the image", id="q1"), Item(text="a blue square", id="q2")]
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in items))
    for role in ("query", "document"):
        assert main(["embed", "--model", tiny_model, "--input", str(path), "--out", str(tmp_path / role),
                     "--role", role, "--workers", "0"]) == 0
        assert json.loads((tmp_path / role / "manifest.json").read_text())["role"] == role
    model = load_embedder(tiny_model)
    np.testing.assert_allclose(np.load(tmp_path / "query" / "embeddings.npy"), model.encode_query(items), atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "document" / "embeddings.npy"), model.encode_document(items),
                               atol=1e-5)
