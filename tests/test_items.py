"""Item: modality, image/video loading and validation, JSONL reading; every error names the item."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from umr.items import Item, ItemError, as_items, load_image, read_items


def png_bytes(size: tuple[int, int] = (24, 16), colour: tuple[int, int, int] = (200, 30, 30),
              mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 128).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height but carries only a few bytes of pixel data (a tiny bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pixels + chunk(b"IEND", b"")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if any image's pixels get decoded; returns the list of attempted decodes."""
    calls: list[str] = []

    def refuse(self: ImageFile.ImageFile) -> None:
        calls.append(f"{self.size}")
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


# -- modality and construction -------------------------------------------------------------------------------
def test_modality_strings() -> None:
    assert Item(text="a cat").modality == "text"
    assert Item(image=b"x").modality == "image"
    assert Item(text="a cat", image=b"x").modality == "image,text"
    assert Item(text="   ", image=b"x").modality == "image"  # blank text does not count
    assert Item(video=[b"x"]).modality == "video"
    assert Item(video="clip.mp4", text="what happens").modality == "video,text"


@pytest.mark.parametrize("kwargs", [{}, {"text": ""}, {"text": "  \n"}, {"id": "q1"}])
def test_empty_item_is_rejected(kwargs: dict) -> None:
    with pytest.raises(ItemError, match="empty item"):
        Item(**kwargs)


def test_empty_item_error_names_its_id() -> None:
    with pytest.raises(ItemError, match="'q1'"):
        Item(id="q1", text="")


def test_text_must_be_a_string() -> None:
    with pytest.raises(ItemError, match="text must be a string.*int"):
        Item(text=5, id="d9")  # type: ignore[arg-type]


def test_as_items_accepts_strings_and_items() -> None:
    items = as_items(["hello", Item(image=b"x", id="i")])
    assert [it.modality for it in items] == ["text", "image"]


# -- images --------------------------------------------------------------------------------------------------
def test_corrupt_file_names_path(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ItemError, match="corrupt.png.*not a readable image"):
        Item(image=str(bad)).load_image()
    with pytest.raises(ItemError, match="'cand:42'.*not a readable image"):
        Item(image=bad, id="cand:42").validate()


def test_truncated_png_is_rejected(tmp_path: Path) -> None:
    data = png_bytes((64, 64))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ItemError, match="'cut-1'"):
        Item(image=path, id="cut-1").load_image()


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "img.jpg"
    with pytest.raises(ItemError, match="'q7'.*not found.*img.jpg"):
        Item(image=str(missing), id="q7").load_image()
    with pytest.raises(ItemError, match=r"item \(path .*img.jpg'\)"):
        Item(image=missing).load_image()


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ItemError, match="directory"):
        Item(image=tmp_path, id="d").load_image()


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ItemError, match="'e1'.*0 bytes"):
        Item(image=empty, id="e1").load_image()


def test_huge_image_rejected_before_decoding(tmp_path: Path, no_decoding: list[str]) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20000, 20000))
    assert path.stat().st_size < 200
    with pytest.raises(ItemError, match="'bomb-1'.*pixel"):
        Item(image=path, id="bomb-1").load_image()
    with pytest.raises(ItemError, match="bomb.png.*pixel"):
        Item(image=str(path)).load_image()
    assert no_decoding == []


def test_umr_pixel_limit_applies_below_pils_own(tmp_path: Path, no_decoding: list[str]) -> None:
    # 9000 × 9000 = 81 M pixels: under PIL's bomb threshold, over umr's MAX_PIXELS (64 M)
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(9000, 9000))
    with pytest.raises(ItemError, match="'big'.*9000x9000.*downscale"):
        Item(image=path, id="big").load_image()
    assert no_decoding == []


def test_max_pixels_is_configurable() -> None:
    item = Item(image=png_bytes((30, 30)), id="small")
    assert item.load_image().size == (30, 30)
    with pytest.raises(ItemError, match="'small'.*30x30"):
        item.load_image(max_pixels=500)
    with pytest.raises(ItemError, match="'pil'.*over the pixel limit"):
        Item(image=Image.new("RGB", (30, 30)), id="pil").load_image(max_pixels=500)


def test_bytes_input() -> None:
    img = Item(image=png_bytes((24, 16), (10, 20, 250)), id="b").load_image()
    assert img.mode == "RGB" and img.size == (24, 16) and img.getpixel((3, 3)) == (10, 20, 250)
    with pytest.raises(ItemError, match="'b0'.*empty"):
        Item(image=b"", id="b0").load_image()
    with pytest.raises(ItemError, match="'b1'.*not a readable image"):
        Item(image=b"\x89PNG garbage", id="b1").load_image()
    with pytest.raises(ItemError, match="in-memory image"):
        load_image(b"garbage", item=Item(image=b"garbage"))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "CMYK"])
def test_pil_input_any_mode_becomes_rgb(mode: str) -> None:
    img = Item(image=Image.new(mode, (7, 5))).load_image()
    assert img.mode == "RGB" and img.size == (7, 5)


def test_zero_size_pil_image() -> None:
    with pytest.raises(ItemError, match="'z'.*zero width"):
        Item(image=Image.new("RGB", (0, 4)), id="z").load_image()


def test_load_image_on_text_item() -> None:
    with pytest.raises(ItemError, match="has no image"):
        Item(text="just text", id="t").load_image()


def test_greyscale_file_is_read_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    path.write_bytes(png_bytes((10, 10), mode="L"))
    img = Item(image=path).load_image()
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (128, 128, 128)


# -- video ---------------------------------------------------------------------------------------------------
def grey(level: int, size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, (level, level, level))


def test_video_frames_are_sampled_uniformly() -> None:
    frames = [grey(10 * i) for i in range(20)]
    picked = Item(video=frames, id="v").load_frames(max_frames=4)
    assert [f.getpixel((0, 0))[0] for f in picked] == [0, 50, 100, 150]
    assert len(Item(video=frames[:3]).load_frames(max_frames=8)) == 3


def test_video_frames_mixed_sources_and_bad_frame(tmp_path: Path) -> None:
    path = tmp_path / "f.png"
    path.write_bytes(png_bytes())
    frames = Item(video=[grey(0), png_bytes(), str(path)]).load_frames()
    assert [f.mode for f in frames] == ["RGB"] * 3
    with pytest.raises(ItemError, match="'v2'.*not found"):
        Item(video=[grey(0), str(tmp_path / "missing.png")], id="v2").load_frames()
    with pytest.raises(ItemError, match="'v3'.*no frames"):
        Item(video=[], id="v3").load_frames()


def write_video(path: Path, levels: list[int], size: int = 32, codec: str = "mpeg4") -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for level in levels:
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), level, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize(("name", "codec"), [("clip.mp4", "mpeg4"), ("clip.webm", "libvpx")])
def test_video_file_via_pyav(tmp_path: Path, name: str, codec: str) -> None:
    pytest.importorskip("av")
    path = tmp_path / name
    levels = [20 * i for i in range(12)]
    write_video(path, levels, codec=codec)
    frames = Item(video=str(path), text="what happens", id="vid").load_frames(max_frames=4)
    assert len(frames) == 4
    assert all(f.mode == "RGB" and f.size == (32, 32) for f in frames)
    got = [float(np.asarray(f).mean()) for f in frames]
    want = [levels[0], levels[3], levels[6], levels[9]]  # uniform sampling: every third of 12 frames
    assert np.allclose(got, want, atol=12), (got, want)
    assert len(Item(video=path).load_frames(max_frames=50)) == 12  # short videos keep every frame


def test_video_frame_size_limit(tmp_path: Path) -> None:
    pytest.importorskip("av")
    path = tmp_path / "wide.mp4"
    write_video(path, [0, 100, 200], size=64)
    with pytest.raises(ItemError, match="'big-vid'.*64x64.*pixel limit"):
        Item(video=path, id="big-vid").load_frames(max_pixels=1000)


def test_bad_video_files_name_the_item(tmp_path: Path) -> None:
    pytest.importorskip("av")
    with pytest.raises(ItemError, match="'v-missing'.*not found"):
        Item(video=tmp_path / "none.mp4", id="v-missing").load_frames()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\1\2 not a video" * 50)
    with pytest.raises(ItemError, match="junk.mp4.*not a readable video"):
        Item(video=str(junk)).validate()


# -- JSON / JSONL --------------------------------------------------------------------------------------------
def test_read_items_resolves_paths_and_defaults_ids(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes())
    lines = ['{"qid": "9:1", "query_txt": "a red box", "query_img_path": "img/a.png", "query_modality": "image,text"}',
             "",
             '{"text": "plain", "instruction": "Find it."}']
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    first, second = read_items(path)
    assert first.id == "9:1" and first.modality == "image,text" and first.meta == {"query_modality": "image,text"}
    assert Path(first.image) == tmp_path / "img" / "a.png"
    first.validate()
    assert second.id == "items.jsonl:3" and second.instruction == "Find it."
    assert Item.from_dict(first.to_dict()).image == first.image


@pytest.mark.parametrize("bad_line", ['{"text": "unclosed', "[1, 2]", "{}", '{"id": "x", "text": 3}'])
def test_read_items_bad_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "fine"}\n\n' + bad_line + "\n")
    with pytest.raises(ValueError, match=r"q\.jsonl:3: "):
        list(read_items(path))
