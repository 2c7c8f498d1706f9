"""MSR-VTT on real MPEG-4 clips: the model's own video path, the mean-of-frames path, and the choice between them."""

from collections.abc import Sequence

import pytest
from suite_fixtures import ColourEmbedder, KeyEmbedder, msrvtt

from umr.eval.suites import SuiteOptions, run_suite
from umr.eval.suites.msrvtt import encode_videos, supports_video
from umr.items import Item


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return msrvtt(tmp_path_factory.mktemp("video"))


class Recording(ColourEmbedder):
    """Records what each forward pass saw: "video" items, or images (frames)."""

    def __init__(self, takes_video: bool = False) -> None:
        self.seen: list[str] = []
        self.supports_video = takes_video

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        self.seen += [it.modality for it in items]
        return list(items)

    def vector(self, item: Item):
        if item.video is not None:  # the "native" path of this toy model: the mean colour of its frames
            return sum(self.vector(Item(image=f)) for f in item.load_frames(max_frames=4))
        return super().vector(item)


def test_mean_of_frames_recovers_the_colour_of_each_clip(clips):
    """The colour embedder cannot take videos, so auto = mean of decoded frames: captions name the colours."""
    model = Recording()
    result = run_suite("msrvtt", model, clips.root, SuiteOptions(frames=3))
    m = result.rows[0].metrics
    assert m["t2v R@1"] == m["v2t R@1"] == 1.0 and m["t2v MdR"] == m["v2t MnR"] == 1.0
    assert result.notes == ["video embedding: mean of 3 frames"]
    assert model.seen.count("image") == 4 * 3 * 2  # four clips × three frames, as candidates and as queries
    assert "video" not in model.seen


def test_native_mode_passes_the_video_to_the_model(clips):
    model = Recording(takes_video=True)
    result = run_suite("msrvtt", model, clips.root)
    assert result.rows[0].metrics["t2v R@1"] == 1.0
    assert model.seen.count("video") == 4 * 2 and "image" not in model.seen
    assert result.notes == ["video embedding: native"]
    forced = Recording(takes_video=True)
    run_suite("msrvtt", forced, clips.root, SuiteOptions(video_mode="mean", instructions=False))
    assert forced.seen.count("image") == 4 * 8 and "video" not in forced.seen  # 12-frame clips, 8 sampled


def test_key_embedder_ranks_videos_by_id_in_native_mode(clips):
    result = run_suite("msrvtt", KeyEmbedder(clips.answers), clips.root, SuiteOptions(video_mode="native"))
    assert result.rows[0].metrics["t2v R@10"] == 1.0


def test_tiny_gme_embeds_videos_natively_and_by_frame_mean(clips):
    from umr.models.registry import load_embedder

    gme = load_embedder("tiny:gme")
    assert supports_video(gme)
    native = run_suite("msrvtt", gme, clips.root, SuiteOptions(batch_size=8))
    mean = run_suite("msrvtt", gme, clips.root, SuiteOptions(batch_size=8, video_mode="mean", frames=4))
    assert native.notes == ["video embedding: native"] and mean.notes == ["video embedding: mean of 4 frames"]
    for r in (native, mean):
        m = r.rows[0].metrics
        assert 0.0 <= m["t2v R@1"] <= m["t2v R@5"] == 1.0  # four videos: always within the top 5
        assert 1.0 <= m["t2v MdR"] <= 4.0 and 1.0 <= m["v2t MnR"] <= 4.0
    videos = [Item(video=str(clips.root / "videos" / "all" / "video7000.mp4"), id="v")]
    a = encode_videos(gme, videos, SuiteOptions(video_mode="native"), query=False)
    b = encode_videos(gme, videos, SuiteOptions(video_mode="mean"), query=False)
    assert a.shape == b.shape == (1, gme.dim) and abs(float((a * a).sum()) - 1) < 1e-5
    assert not (a == b).all()


def test_unknown_video_mode_is_an_error(clips):
    with pytest.raises(ValueError, match="video_mode"):
        run_suite("msrvtt", ColourEmbedder(), clips.root, SuiteOptions(video_mode="fast"))


def test_random_baseline_gives_the_same_numbers_on_two_runs_of_decoded_frames(clips):
    """Decoded frames are in-memory images: the random baseline keys them by their pixels, not their address."""
    from umr.models.baselines import RandomEmbedder

    opts = SuiteOptions(video_mode="mean", frames=4)
    first = run_suite("msrvtt", RandomEmbedder(), clips.root, opts).rows[0].metrics
    second = run_suite("msrvtt", RandomEmbedder(), clips.root, opts).rows[0].metrics
    assert first == second
    frame = Item(video=str(clips.root / "videos" / "all" / "video7000.mp4")).load_frames(max_frames=2)
    model = RandomEmbedder()
    again = Item(video=str(clips.root / "videos" / "all" / "video7000.mp4")).load_frames(max_frames=2)
    same = [model.vector(Item(image=f, id="v#frame0")) for f in (frame[0], again[0])]
    assert frame[0] is not again[0] and (same[0] == same[1]).all()
    other = model.vector(Item(image=frame[1], id="v#frame0"))  # another frame under the same id differs
    assert not (other == same[0]).all()
