"""Protocol options whose official codes differ: Karpathy captions per image (VSE++ vs BLIP/ALBEF) and the FashionIQ
caption join (SEARLE vs CLIP4Cir). Each official rule is transcribed into the test, not imported."""

import json

import pytest
from suite_fixtures import ColourEmbedder, KeyEmbedder, fashioniq, karpathy

from umr.eval.suites import SuiteOptions, run_suite
from umr.eval.suites.fashioniq import query_text


@pytest.fixture()
def seven_captions(tmp_path):
    """Five Flickr30K-style test images; images 0 and 1 have two extra captions that describe the next image."""
    fx = karpathy(tmp_path, "flickr30k", n_test=5)
    path = fx.root / "dataset_flickr30k.json"
    data = json.loads(path.read_text())
    for i in (0, 1):
        rec = data["images"][i]
        rec["sentences"] += [{"raw": f"An extra caption {j} of image {i}.", "sentid": 100 + j} for j in (5, 6)]
        for j in (5, 6):
            fx.answers[f"{rec['filename']}#{j}"] = data["images"][i + 1]["filename"]
    path.write_text(json.dumps(data, indent=1))
    return fx


def test_karpathy_first_five_captions_or_all(seven_captions):
    fx = seven_captions
    five = run_suite("flickr30k", KeyEmbedder(fx.answers), fx.root).rows[0]
    assert five.n_queries == 25 and five.metrics["RSUM"] == 6.0  # the extras are dropped: a perfect model
    every = run_suite("flickr30k", KeyEmbedder(fx.answers), fx.root, SuiteOptions(captions_per_image=None)).rows[0]
    m = every.metrics
    assert every.n_queries == 29
    # t2i: the 4 extra captions find the next image first (score 1) → 25 of 29 at rank 1; 5 images → R@5 = 1
    assert m["t2i R@1"] == pytest.approx(25 / 29) and m["t2i R@5"] == 1.0
    # i2t: images 1 and 2 tie (score 1) with the two extras of the image before them, which come earlier in the
    # caption list → rank 3; the other three images rank 1
    assert m["i2t R@1"] == pytest.approx(3 / 5) and m["i2t R@5"] == 1.0
    assert m["RSUM"] == pytest.approx(25 / 29 + 1 + 1 + 3 / 5 + 1 + 1)
    assert "all captions of each image" in " ".join(run_suite(
        "flickr30k", KeyEmbedder(fx.answers), fx.root, SuiteOptions(captions_per_image=None)).notes)
    with pytest.raises(ValueError, match="captions_per_image must be at least 1"):
        run_suite("flickr30k", KeyEmbedder(fx.answers), fx.root, SuiteOptions(captions_per_image=0))


# (captions, SEARLE's join, CLIP4Cir's join), transcribed from their validation code:
#   SEARLE   f"{c0.strip('.?, ')} and {c1.strip('.?, ')}"
#   CLIP4Cir f"{c0.strip('.?, ').capitalize()} and {c1.strip('.?, ')}"
JOINS = [
    (["is red.", "has a logo"], "is red and has a logo", "Is red and has a logo"),
    (["Has A Red Logo?", " is longer, "], "Has A Red Logo and is longer", "Has a red logo and is longer"),
    (["  , darker. ", "Same Shape."], "darker and Same Shape", "Darker and Same Shape"),
]


@pytest.mark.parametrize("caps, searle, clip4cir", JOINS)
def test_fashioniq_caption_join_protocols(caps, searle, clip4cir):
    assert query_text(caps) == query_text(caps, "searle") == searle
    assert query_text(caps, "clip4cir") == clip4cir
    with pytest.raises(ValueError, match="caption_join"):
        query_text(caps, "blip")


def test_fashioniq_queries_use_the_chosen_join(tmp_path):
    fx = fashioniq(tmp_path, categories=("dress",))
    seen = []

    class Recorder(ColourEmbedder):
        def prepare(self, items):
            seen.extend(it.text for it in items if it.text)
            return list(items)

    result = run_suite("fashioniq", Recorder(), fx.root, SuiteOptions(caption_join="clip4cir"))
    assert seen[:3] == ["Is colour 1 and has a square", "Is colour 3 and has a square", "Is colour 5 and has a square"]
    assert "captions joined as clip4cir does" in result.notes
    seen.clear()
    run_suite("fashioniq", Recorder(), fx.root)
    assert seen[0] == "is colour 1 and has a square"


def test_fashioniq_needs_two_captions(tmp_path):
    fx = fashioniq(tmp_path, categories=("dress",))
    path = fx.root / "captions" / "cap.dress.val.json"
    data = json.loads(path.read_text())
    data[1]["captions"] = ["only one"]
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(ValueError, match=r"cap\.dress\.val\.json:\d+: .*captions should be two non-empty strings"):
        run_suite("fashioniq", KeyEmbedder(fx.answers), fx.root)
