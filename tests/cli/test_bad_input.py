"""Bad input to the CLI: each case stops with one line naming the file / line / field, exit code 2, no traceback,
and what an earlier run wrote is left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from umr.cli import main

GOOD = [{"id": "a", "text": "a red circle"}, {"id": "b", "text": "a blue square"}]

# (case, the second line of the items file as bytes, words the one-line error must hold)
X = "items.jsonl:2: item 'x': "
BAD_LINES = [
    ("img_path number", b'{"id": "x", "img_path": 5}', X + "image path must be a string, got int"),
    ("img_path true", b'{"id": "x", "image": true}', X + "image path must be a string, got bool"),
    ("img_path list", b'{"id": "x", "image": ["a.png"]}', X + "image path must be a string, got list"),
    ("id a dict", b'{"id": {"x": 1}, "text": "t"}',
     "items.jsonl:2: item: id must be a string or an integer, got dict"),
    ("text a list", b'{"id": "x", "text": ["t"]}', X + "text must be a string, got list"),
    ("not utf-8", b'{"id": "x", "text": "caf\xe9"}', "items.jsonl:2: not UTF-8 (byte 0xe9"),
    ("surrogate", b'{"id": "x", "text": "\\ud800 y"}', X + "text is not valid Unicode"),
    ("malformed", b'{"id": "x", "text": ', "items.jsonl:2: malformed JSON"),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    return rc, capsys.readouterr().err


def assert_one_line(err: str, *words: str) -> None:
    """No traceback and a single error line (a progress bar drawn before the error may share stderr)."""
    lines = [line for line in err.split("\n") if line.strip() and "\r" not in line]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("umr "), err
    for w in words:
        assert w in err, err


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done_job(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Path:
    """A finished `umr embed` job that every bad command below is pointed at: it must come out unchanged."""
    folder = tmp_path_factory.mktemp("done")
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    assert main(["embed", "--model", tiny_model, "--input", str(folder / "items.jsonl"), "--out",
                 str(folder / "job")]) == 0
    return folder / "job"


@pytest.mark.parametrize("verb", ["embed", "index build"])
@pytest.mark.parametrize(("case", "line", "words"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_bad_lines_name_file_and_line(verb: str, case: str, line: bytes, words: str, tmp_path: Path,
                                      done_job: Path, tiny_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(json.dumps(GOOD[0]).encode() + b"\n" + line + b"\n")
    before = snapshot(done_job)
    flag = "--input" if verb == "embed" else "--corpus"
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(items), "--out", str(done_job))
    assert rc == 2
    assert_one_line(err, words, f"umr {verb.split()[0]}: error: ")
    assert snapshot(done_job) == before


@pytest.mark.parametrize("verb", ["embed", "index build"])
def test_input_that_is_a_directory(verb: str, tmp_path: Path, done_job: Path, tiny_model: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--input" if verb == "embed" else "--corpus"
    before = snapshot(done_job)
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(tmp_path), "--out", str(done_job))
    assert rc == 2
    assert_one_line(err, f"{tmp_path}: is a directory; give a JSONL file")
    assert snapshot(done_job) == before


@pytest.mark.parametrize("verb", ["embed", "index build"])
def test_out_that_is_a_file(verb: str, tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    flag = "--input" if verb == "embed" else "--corpus"
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(items), "--out", str(out))
    assert rc == 2
    assert_one_line(err, f"{out} is a file, not a job directory")
    assert out.read_text() == "keep me"


@pytest.fixture()
def tiny_image_corpus(tmp_path: Path) -> Path:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "red.png")
    Image.new("RGB", (1, 1), "red").save(tmp_path / "dot.png")
    rows = [*GOOD, {"id": "red", "image": "red.png"}, {"id": "dot", "image": "dot.png"}]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "items.jsonl"


@pytest.mark.parametrize("verb", ["embed", "index build"])
def test_one_pixel_image_is_a_clear_error(verb: str, tiny_image_corpus: Path, tmp_path: Path, tiny_model: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "job"
    flag = "--input" if verb == "embed" else "--corpus"
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(tiny_image_corpus), "--out", str(out),
                  "--shard-size", "1")
    assert rc == 2
    assert_one_line(err, "item 'dot': image is 1x1: a side under 4 pixels is too small to embed")
    assert len(list((out / "shards").glob("*.npy"))) == 3  # the shards before it are kept for a resume


@pytest.mark.parametrize("verb", ["embed", "index build"])
def test_a_bad_image_prepared_by_a_worker_is_the_same_one_line_error(verb: str, tiny_image_corpus: Path,
                                                                     tmp_path: Path, tiny_model: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--input" if verb == "embed" else "--corpus"
    # batches of one item: four batches, so two worker processes prepare them and one of them meets the dot
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(tiny_image_corpus), "--out",
                  str(tmp_path / "job"), "--batch-size", "1", "--workers", "2")
    assert rc == 2
    assert_one_line(err, "item 'dot': image is 1x1: a side under 4 pixels is too small to embed")


def embed_skipping_bad(corpus: Path, out: Path, model: str) -> tuple[list[dict], int]:
    """`umr embed --skip-bad` over corpus: (the rejected.jsonl rows, the manifest's n_items)."""
    assert main(["embed", "--model", model, "--input", str(corpus), "--out", str(out), "--skip-bad"]) == 0
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").open()]
    return rejected, json.loads((out / "manifest.json").read_text())["n_items"]


def test_one_pixel_image_is_caught_by_skip_bad(tiny_image_corpus: Path, tmp_path: Path, tiny_model: str) -> None:
    rejected, n_items = embed_skipping_bad(tiny_image_corpus, tmp_path / "job", tiny_model)
    assert [r["id"] for r in rejected] == ["dot"] and "1x1" in rejected[0]["error"]
    assert n_items == 3


def test_train_config_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(capsys, "train", "--config", str(tmp_path))
    assert rc == 2
    assert_one_line(err, f"umr train: error: {tmp_path}: is a directory; give a file")


def test_train_config_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model: tiny:gme\nlr: [1e-4\nepochs: 2\n")
    rc, err = run(capsys, "train", "--config", str(config))
    assert rc == 2
    assert_one_line(err, f"{config}: not valid YAML (", "line 3, column 7")


@pytest.mark.parametrize(("text", "words"), [("epochs: -1", "epochs: must be ≥ 1, got -1"),
                                             ("num_negatives: -3", "num_negatives: must be ≥ 0, got -3"),
                                             ("save_every: -2", "save_every: must be ≥ 0, got -2"),
                                             ("lr: fast", "lr: expected a number, got 'fast'")])
def test_train_config_bad_values(text: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"model: tiny:gme\ndata: pairs.jsonl\noutput_dir: {tmp_path / 'runs'}\n{text}\n")
    rc, err = run(capsys, "train", "--config", str(config))
    assert rc == 2
    assert_one_line(err, words)
    assert not (tmp_path / "runs").exists()


@pytest.fixture()
def special_token_corpus(tmp_path: Path) -> Path:
    """An image item whose text holds Qwen2-VL's image-slot token: the forward failed on a token count mismatch."""
    Image.new("RGB", (32, 32), "red").save(tmp_path / "red.png")
    rows = [*GOOD, {"id": "sly", "text": "look <|image_pad|> here", "image": "red.png"}]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "items.jsonl"


@pytest.mark.parametrize("verb", ["embed", "index build"])
def test_text_with_a_special_token_is_named(verb: str, special_token_corpus: Path, tmp_path: Path, tiny_model: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--input" if verb == "embed" else "--corpus"
    rc, err = run(capsys, *verb.split(), "--model", tiny_model, flag, str(special_token_corpus), "--out",
                  str(tmp_path / "job"))
    assert rc == 2
    assert_one_line(err, "item 'sly': its text holds the model's special token '<|image_pad|>'")


def test_text_with_a_special_token_is_caught_by_skip_bad(special_token_corpus: Path, tmp_path: Path,
                                                         tiny_model: str) -> None:
    rejected, n_items = embed_skipping_bad(special_token_corpus, tmp_path / "job", tiny_model)
    assert [r["id"] for r in rejected] == ["sly"] and "'<|image_pad|>'" in rejected[0]["error"]
    assert n_items == 2
