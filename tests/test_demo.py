"""The interim main job runs end to end offline and leaves its files behind."""

from __future__ import annotations

from umr.cli import main
from umr.index.base import load_index


def test_demo_end_to_end(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "-k", "2"]) == 0
    printed = capsys.readouterr().out
    for title in ("text → image", "image → text", "image + edit → image"):
        assert title in printed
    index = load_index(out / "index")
    assert len(index) > 100 and (out / "embeddings" / "embeddings.npy").is_file()
    # Rerun resumes the finished embedding job instead of redoing it.
    assert main(["demo", "--out", str(out), "-k", "2"]) == 0
