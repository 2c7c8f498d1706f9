"""`umr` prints umr's own errors as one line (exit 2) and lets every other exception, a bug, show its traceback."""

from __future__ import annotations

import pytest

import umr.cli.cmd_recipes as verb
from umr.cli import main
from umr.errors import UmrError
from umr.items import ItemError


@pytest.mark.parametrize("error", [UmrError("bad --k: -1"), ItemError(None, "text must be a string"),
                                   FileNotFoundError("no such file: x.jsonl")])
def test_user_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                  error: Exception) -> None:
    monkeypatch.setattr(verb, "run", lambda args: (_ for _ in ()).throw(error))
    assert main(["recipes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("umr recipes: error: ") and err.count("\n") == 1 and str(error) in err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError that umr did not raise about the input (here: unpacking) is not the user's to fix."""

    def buggy(args: object) -> int:
        first, second = [1, 2, 3]  # the bug under test
        return first + second

    monkeypatch.setattr(verb, "run", buggy)
    with pytest.raises(ValueError, match="too many values to unpack"):
        main(["recipes"])


@pytest.mark.parametrize("error", [OSError(28, "No space left on device", "out/shard-00003.npy"),
                                   OSError(30, "Read-only file system", "/ro/out")])
def test_a_full_disk_or_read_only_folder_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                     error: OSError) -> None:
    monkeypatch.setattr(verb, "run", lambda args: (_ for _ in ()).throw(error))
    assert main(["recipes"]) == 2
    assert capsys.readouterr().err == f"umr recipes: error: {error.filename}: {error.strerror}\n"


@pytest.mark.parametrize(("argv", "words"), [
    (["embed", "--batch-size", "-5"], "argument --batch-size: must be ≥ 1, got -5"),  # ran as 1
    (["embed", "--batch-size", "0"], "argument --batch-size: must be ≥ 1, got 0"),
    (["embed", "--shard-size", "0"], "argument --shard-size: must be ≥ 1, got 0"),  # became 1000
    (["index", "build", "--shard-size", "-1"], "argument --shard-size: must be ≥ 1, got -1"),
    (["eval", "--batch-size", "0"], "argument --batch-size: must be ≥ 1, got 0"),
    (["eval", "--shard-size", "0"], "argument --shard-size: must be ≥ 1, got 0"),
    (["ablate", "--batch-size", "0"], "argument --batch-size: must be ≥ 1, got 0"),
    (["train", "--max-steps", "0"], "argument --max-steps: must be ≥ 1, got 0"),
    (["serve", "--port", "99999"], "argument --port: a port is 0-65535, got 99999"),  # OverflowError traceback
    (["embed", "--batch-size", "many"], "argument --batch-size: expected an integer, got 'many'"),
])
def test_bad_counts_stop_at_parse_time(argv: list[str], words: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and words in capsys.readouterr().err
