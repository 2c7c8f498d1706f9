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
