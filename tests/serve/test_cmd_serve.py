"""`umr serve` wiring: index + recorded model → app, the same checks as `umr search`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from umr.cli import build_parser, main
from umr.cli.cmd_serve import build_app


def app_for(*argv: str):
    return build_app(build_parser().parse_args(["serve", *argv]))


def test_serves_the_index_with_its_recorded_model(toy_index_dir: Path) -> None:
    args = build_parser().parse_args(["serve", "--index", str(toy_index_dir.parent)])
    assert (args.host, args.port, args.token) == ("127.0.0.1", 8000, None)
    with TestClient(build_app(args)) as client:
        assert client.get("/health").json()["model"] == {"name": "toy-serve", "dim": 64}
        res = client.post("/search", json={"text": "sleeping cat", "k": 1}).json()
        assert res["results"][0]["id"] == "t-cat"
        assert client.get("/items/i-blue").json()["thumbnail"].startswith("data:image/jpeg")


def test_options_reach_the_settings(toy_index_dir: Path) -> None:
    app = app_for("--index", str(toy_index_dir), "--token", "t0k", "--no-batching", "--max-batch", "8",
                  "--cors-origin", "http://a.example", "--reranker", "py:serve_support:SeaScorer")
    s = app.state.settings
    assert (s.token, s.batching, s.max_batch, s.cors_origins) == ("t0k", False, 8, ["http://a.example"])
    with TestClient(app) as client:
        body = {"query": {"text": "q"}, "candidates": [{"id": "t-sea"}]}
        res = client.post("/rerank", json=body, headers={"Authorization": "Bearer t0k"})
        assert res.json()["scores"] == [2.0]


def test_model_mismatch_is_refused(toy_index_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["serve", "--index", str(toy_index_dir), "--model", "py:serve_support:OtherToyEmbedder"])
    assert rc == 2 and "index/model mismatch" in capsys.readouterr().err


def test_bad_reranker_spec(toy_index_dir: Path) -> None:
    with pytest.raises(ValueError, match="cannot import 'Nope'"):
        app_for("--index", str(toy_index_dir), "--reranker", "py:serve_support:Nope")


def test_mllm_reranker_by_model_name(toy_index_dir: Path) -> None:
    """`--reranker tiny:gme` is umr.rerank's P(Yes) re-ranker: /rerank returns probabilities, search fuses them."""
    app = app_for("--index", str(toy_index_dir), "--reranker", "tiny:gme", "--fuse-weight", "0.5",
                  "--rerank-depth", "4")
    with TestClient(app) as client:
        body = {"query": {"text": "a grey cat", "instruction": "Find the caption."},
                "candidates": [{"id": "t-cat"}, {"id": "i-red"}, {"text": "a dog"}]}
        scores = client.post("/rerank", json=body).json()["scores"]
        assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
        res = client.post("/search", json={"text": "sleeping cat", "k": 2, "rerank": True}).json()
        assert res["reranked"] is True and len(res["results"]) == 2
        for hit in res["results"]:
            assert hit["score"] == pytest.approx(hit["retrieval_score"] + 0.5 * hit["rerank_score"], abs=1e-5)


def test_help_lists_serve(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--token" in out and "127.0.0.1" in out
