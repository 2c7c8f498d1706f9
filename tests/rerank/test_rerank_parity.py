"""Fidelity: umr's P(Yes) equals the official re-ranking code's (official_rerank.py, written independently of
umr) on a tiny Qwen2-VL-Instruct fine-tune in LamRA-Rank's on-disk layout, weights drawn with std 0.2 so that
a wrong prompt, image size or logit rule shows.

LamRA-Rank's and U-MARVEL's point-wise re-rankers share one code path, so style "lamra" (alias "u-marvel")
covers both. MM-Embed has no public re-ranking code: there is nothing to match, and LLaVA-NeXT keeps umr's own
prompt ("umr", the default), which transcribes nothing (`test_without_official_code_the_umr_prompt_is_used`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from official_layouts import qwen_checkpoint
from official_rerank import lamra_p_yes
from rerank_support import draw

from umr import Item
from umr.errors import UmrError
from umr.models.tiny import build_tiny_llava_next
from umr.rerank.prompted import Reranker
from umr.rerank.styles import resolve_style

INSTRUCTION = "retrieve an image that matches the given caption"
BIG = draw("blue", "sq", px=640)  # 522 tokens at the processor's own limits: over LamRA's 300-token cap
#: name → (query text, query image, instruction, candidate text, candidate image)
PAIRS = {
    "text → image": ("a red circle", None, INSTRUCTION, None, draw("red")),
    "image → text": (None, draw("green"), None, '"a photo of a green circle"', None),
    "text+image → text+image": ("make it blue", draw("red"), "find a similar image", "a blue square",
                                draw("blue", "sq")),
    "text → text, no instruction": ("what is red", None, None, "red is a colour\r", None),
    "text → image over the cap": ("a blue square", None, INSTRUCTION, None, BIG),
}


def items(case: str) -> tuple[Item, Item]:
    qt, qi, ins, ct, ci = PAIRS[case]
    return Item(text=qt, image=qi, instruction=ins), Item(text=ct, image=ci)


@pytest.fixture(scope="module")
def lamra_rank(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(qwen_checkpoint("lamra-rank", tmp_path_factory.mktemp("lamra-rank") / "ckpt"))


@pytest.fixture(scope="module")
def official(lamra_rank: str) -> np.ndarray:
    return np.array([lamra_p_yes(lamra_rank, *PAIRS[c]) for c in PAIRS])


def test_p_yes_matches_the_official_lamra_and_u_marvel_code(lamra_rank: str, official: np.ndarray) -> None:
    rr = Reranker(lamra_rank, device="cpu", dtype="fp32", batch_size=len(PAIRS), style="lamra")  # one padded batch
    assert rr.repetition_penalty == 1.05  # the checkpoint's generation_config
    got = rr.score_pairs([items(c) for c in PAIRS])
    np.testing.assert_allclose(got, official, atol=1e-4)
    assert official.std() > 0.05  # the scores differ between pairs: the check compares something
    umarvel = Reranker(lamra_rank, device="cpu", dtype="fp32", style="u-marvel")
    np.testing.assert_allclose(umarvel.score_pairs([items(c) for c in PAIRS]), official, atol=1e-4)


@pytest.mark.parametrize("wrong", ["umr prompt", "no repetition penalty", "GME image budget"])
def test_the_check_fails_on_a_wrong_setting(wrong: str, lamra_rank: str, official: np.ndarray) -> None:
    rr = Reranker(lamra_rank, device="cpu", dtype="fp32", style="umr" if wrong == "umr prompt" else "lamra")
    if wrong == "no repetition penalty":
        rr.repetition_penalty = 1.0
    if wrong == "GME image budget":  # the checkpoint recipe's 256..1,280 tokens, not LamRA's 300-token cap
        rr.backbone.recipe = rr.backbone.recipe.with_overrides(
            {"image_pre_resize": [4, 16384], "min_image_tokens": 256, "max_image_tokens": 1280})
    got = rr.score_pairs([items(c) for c in PAIRS])
    assert np.abs(got - official).max() > 1e-3  # ten times the tolerance


def test_the_exact_lamra_prompt(lamra_rank: str) -> None:
    rr = Reranker(lamra_rank, device="cpu", style="lamra")
    query = Item(text="a red circle", instruction="find the image")
    cand = Item(text='"a photo of a red circle"', image=draw("red"))
    want = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "I will provide you with a query and a candidate. Please evaluate whether the candidate                "
            "        meets the requirements of the query. If it does, respond with 'Yes'; if it doesn't, responed "
            "with 'No'.Query:Find the image. a red circle.Candidate:<|vision_start|><|image_pad|><|image_pad|>"
            "<|vision_end|>A photo of a red circle.<|im_end|>\n<|im_start|>assistant\n")
    assert rr.prompt(query, cand, candidate_image_tokens=2) == want


def test_a_judge_keeps_the_style_it_was_trained_with(lamra_rank: str, tmp_path: Path) -> None:
    assert Reranker(lamra_rank, device="cpu").style.name == "umr"  # a folder that says nothing: the default
    saved = Reranker(lamra_rank, device="cpu", style="u-marvel").save_pretrained(tmp_path / "judge")
    assert json.loads((saved / "umr_reranker.json").read_text())["style"] == "lamra"
    again = Reranker(saved, device="cpu")
    assert again.style.name == "lamra" and again.repetition_penalty == 1.05  # generation_config saved too
    marker = json.loads((saved / "umr_reranker.json").read_text())
    del marker["style"]  # a judge saved before styles existed was trained with umr's prompt
    (saved / "umr_reranker.json").write_text(json.dumps(marker))
    assert resolve_style(str(saved), saved, "qwen2-vl", None).name == "umr"


def test_a_published_lamra_rank_id_gets_its_official_style(tmp_path: Path) -> None:
    assert resolve_style("code-kunkun/LamRA-Rank", tmp_path, "qwen2-vl", None).name == "lamra"


def test_without_official_code_the_umr_prompt_is_used(tmp_path: Path) -> None:
    """MM-Embed's zero-shot re-ranking prompt is in its paper only; there is no code to match, so LLaVA-NeXT keeps
    umr's prompt, and the LamRA style (Qwen2-VL's chat) is refused there with the folder named."""
    folder = build_tiny_llava_next(tmp_path / "llava")
    assert Reranker(folder, device="cpu").style.name == "umr"
    with pytest.raises(UmrError, match=r"'lamra' is qwen2-vl only; .*llava is llava-next"):
        Reranker(folder, device="cpu", style="lamra")
    with pytest.raises(UmrError, match="unknown re-ranker style 'lamra-rank'; one of caption, lamra, u-marvel, umr"):
        resolve_style("x", tmp_path, "qwen2-vl", "lamra-rank")
