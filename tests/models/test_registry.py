"""`load_embedder` is the one name → Embedder resolver: every verb's --model takes the same names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from umr.errors import UmrError
from umr.items import Item
from umr.models.baselines import OracleEmbedder, RandomEmbedder
from umr.models.registry import import_object, load_embedder


class Fixed(RandomEmbedder):
    """A user's own Embedder class, importable as py:test_registry:Fixed."""

    name = "fixed"


def test_py_names_build_the_callers_class() -> None:
    assert type(load_embedder(f"py:{__name__}:Fixed")) is Fixed
    assert import_object(f"py:{__name__}:Fixed") is Fixed


def test_a_py_name_that_does_not_import_says_which_option() -> None:
    with pytest.raises(ValueError, match=r"--reranker 'py:umr:Nope': cannot import 'Nope' from module 'umr'"):
        import_object("py:umr:Nope", "--reranker")


def test_the_baselines_resolve_by_name(tmp_path: Path) -> None:
    assert isinstance(load_embedder("random"), RandomEmbedder)
    with pytest.raises(ValueError, match="the oracle needs the data root"):
        load_embedder("oracle")
    rows = [{"kind": "did", "id": "d1", "key": "red circle"}, {"kind": "did", "id": "d2", "key": "blue square"},
            {"kind": "qid", "id": "d1", "key": "blue square"}]  # qids and dids are separate namespaces
    (tmp_path / "world_meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    oracle = load_embedder("oracle", data_root=tmp_path)
    assert isinstance(oracle, OracleEmbedder)
    docs = oracle.encode_corpus([Item(text="anything", id="d1"), Item(text="anything", id="d2")])
    scores = oracle.encode_queries([Item(text="anything", id="d1")]) @ docs.T
    # the query d1 asks for the key of document d2: the ceiling ranks it first at cosine 1
    assert scores[0, 1] == pytest.approx(1.0, abs=1e-6) and abs(scores[0, 0]) < 0.5
    with pytest.raises(UmrError, match="oracle: did 'd3' is not in"):
        oracle.encode_corpus([Item(text="anything", id="d3")])


def test_index_and_search_take_the_names_eval_takes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`random` was an eval/mine name only; index build resolved names its own way and refused it."""
    from umr.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"item {i}"}) + "\n" for i in range(5)))
    assert main(["index", "build", "--model", "random", "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
                 "--no-progress"]) == 0
    assert main(["search", "--index", str(tmp_path / "idx"), "--text", "item 1", "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.split("\n", 1)[1])["results"]) == 2


def test_the_recipe_template_drives_text_and_clip_models() -> None:
    """clip-sf.yaml's and text.yaml's template is what their models read (it was hard-coded before), and a
    template override changes the vectors as the recipe says."""
    text = load_embedder("text")
    item = Item(text="a red circle", instruction="Find the image.")
    np.testing.assert_allclose(text.encode([item]), text.encode([Item(text="Find the image. a red circle")]),
                               atol=1e-6)
    custom = load_embedder("text", template="query: {instruction}{text}")
    np.testing.assert_allclose(custom.encode([item]),
                               text.encode([Item(text="query: Find the image. a red circle")]), atol=1e-6)
    assert custom.describe()["template"] == "query: {instruction}{text}" and "template" not in text.describe()
    clip = load_embedder("tiny:clip-sf", instruction_format="[{instruction}] ")
    assert clip.text_of(item) == "[Find the image.] a red circle"


@pytest.mark.parametrize("model", ["text", "tiny:clip-sf"])
def test_a_setting_the_family_does_not_use_is_refused(model: str) -> None:
    with pytest.raises(ValueError, match=r"does not use \['max_image_tokens'\]"):
        load_embedder(model, max_image_tokens=512)


def test_a_device_that_is_not_there_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`umr search --device banana` and `--device cuda` on a machine without a GPU ended in torch tracebacks."""
    import torch

    from umr.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"item {i}"}) + "\n" for i in range(5)))
    assert main(["index", "build", "--model", "tiny:gme", "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    cases = [("banana", "device 'banana' is not a torch device; use cpu, cuda, cuda:N or mps")]
    if not torch.cuda.is_available():
        cases.append(("cuda", "device 'cuda': this machine has no usable CUDA GPU"))
    else:
        cases.append(("cuda:99", f"device 'cuda:99': this machine has {torch.cuda.device_count()} CUDA GPU(s)"))
    for device, words in cases:
        assert main(["search", "--index", str(tmp_path / "idx"), "--text", "item 1", "--device", device]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
