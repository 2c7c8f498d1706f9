"""`Item`: one query or candidate — text, image, text+image or video frames, with an optional instruction.

Modality is a property of the item, never a fork of the pipeline: every embedder takes a list of Items.
Images are validated when loaded, and every error names the item (its id, else its path or text).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from umr.errors import UmrError

#: Pixel limit for one image (width × height). Larger files are rejected as decompression bombs before decoding.
MAX_PIXELS = 64_000_000
#: Smallest side of an image, in pixels. Image processors guess the channel axis from the array's shape, so a side
#: of 1 or 3 pixels is taken for the channels (a crash deep in the model, or a silently scrambled image); an
#: image this small holds no content worth embedding.
MIN_IMAGE_SIDE = 4
#: Largest ratio of the long side to the short one: Qwen2-VL's processor refuses more than 200, and such strips
#: hold no scene any model could describe.
MAX_ASPECT_RATIO = 200
# Lone UTF-16 surrogates: valid in a Python str (and in JSON's \ud800 escapes) but not encodable as UTF-8, so a
# tokenizer fails on them far from where they came in.
_SURROGATE = re.compile("[\ud800-\udfff]")

ImageLike = str | Path | bytes | Image.Image
#: which side of retrieval an item is embedded as (sentence-transformers' names): recipes render the two apart
Role = Literal["query", "document"]
ROLES: tuple[Role, ...] = ("query", "document")


class ItemError(UmrError):
    """A single item cannot be used; the message names the item and says what to do."""

    def __init__(self, item: Item | None, problem: str, hint: str = "") -> None:
        self.item = item
        self.problem = problem
        self.hint = hint
        who = item.describe() if item is not None else "item"
        super().__init__(f"{who}: {problem}" + (f" — {hint}" if hint else ""))

    def __reduce__(self) -> tuple[type[ItemError], tuple[Item | None, str, str]]:
        # rebuilt from its parts, so the error a prepare worker hits reaches the caller unchanged
        return type(self), (self.item, self.problem, self.hint)


@dataclass(frozen=True)
class Item:
    """A query or candidate. At least one of text, image, video must be set.

    image: a path, raw bytes or a PIL image. video: a file path or a sequence of frames (each ImageLike).
    instruction: the task instruction (queries only, by convention); recipes decide where it goes.
    id: qid/did, used in error messages and outputs.
    role: "query" or "document", set by `Embedder.encode_query` / `encode_document` (see `is_query`); not part
    of the item's content, so `to_dict` leaves it out.
    """

    text: str | None = None
    image: ImageLike | None = None
    video: str | Path | Sequence[ImageLike] | None = None
    instruction: str | None = None
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    role: Role | None = None

    def __post_init__(self) -> None:
        if self.role is not None and self.role not in ROLES:
            raise ItemError(self, f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        for name in ("text", "instruction"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ItemError(self, f"{name} must be a string, got {type(value).__name__}")
            if not value.isascii() and (bad := _SURROGATE.search(value)):
                raise ItemError(self, f"{name} is not valid Unicode (a lone surrogate U+{ord(bad.group()):04X} at "
                                f"character {bad.start() + 1})", "send UTF-8 text")
        if not self.has_text and self.image is None and self.video is None:
            raise ItemError(self, "empty item (no text, image or video)", "give at least one of text/image/video")

    # -- modality --------------------------------------------------------------------------------------------
    @property
    def has_text(self) -> bool:
        return self.text is not None and self.text.strip() != ""

    @property
    def modality(self) -> str:
        """M-BEIR spelling: "text", "image", "image,text"; videos: "video" or "video,text"."""
        visual = "video" if self.video is not None else ("image" if self.image is not None else None)
        if visual and self.has_text:
            return f"{visual},text"
        return visual or "text"

    def with_instruction(self, instruction: str | None) -> Item:
        return replace(self, instruction=instruction)

    def with_role(self, role: Role) -> Item:
        return replace(self, role=role)

    @property
    def is_query(self) -> bool:
        """Whether recipes render this item as a query. Its role says; an item given no role (a direct
        `Embedder.prepare` call, training's batches) is a query exactly when it carries an instruction."""
        return self.role == "query" if self.role is not None else self.instruction is not None

    def describe(self) -> str:
        if self.id is not None:
            return f"item {self.id!r}"
        for source in (self.image, self.video):
            if isinstance(source, str | Path):
                return f"item (path {str(source)!r})"
        if self.has_text:
            short = self.text if len(self.text) <= 40 else self.text[:37] + "..."
            return f"item (text {short!r})"
        return "item (in-memory image)"

    # -- loading ---------------------------------------------------------------------------------------------
    def load_image(self, max_pixels: int = MAX_PIXELS) -> Image.Image:
        """The image as RGB, validated. Raises ItemError naming the item on any problem."""
        if self.image is None:
            raise ItemError(self, "has no image")
        return load_image(self.image, max_pixels=max_pixels, item=self)

    def load_frames(self, max_frames: int = 8, max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
        """Video frames as RGB images, uniformly sampled to at most max_frames."""
        if self.video is None:
            raise ItemError(self, "has no video")
        if isinstance(self.video, str | Path):
            frames = _decode_video(Path(self.video), max_frames, item=self, max_pixels=max_pixels)
        else:
            frames = [load_image(f, max_pixels=max_pixels, item=self) for f in self.video]
        if not frames:
            raise ItemError(self, "video has no frames")
        if len(frames) > max_frames:
            step = len(frames) / max_frames
            frames = [frames[int(i * step)] for i in range(max_frames)]
        return frames

    def validate(self, max_pixels: int = MAX_PIXELS) -> None:
        """Load every visual part once so that a bad file fails here, naming the item."""
        if self.image is not None:
            self.load_image(max_pixels)
        if self.video is not None:
            self.load_frames(max_pixels=max_pixels)

    # -- JSON ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], root: str | Path | None = None) -> Item:
        """Build from a JSON object. Keys: id, text, image (path), video (path or list), instruction.

        M-BEIR keys are accepted too (qid/did, query_txt/txt, query_img_path/img_path). Relative paths
        are resolved against root.
        """
        if not isinstance(d, dict):
            raise ItemError(None, f"expected a JSON object, got {type(d).__name__}")
        ident = d.get("id", d.get("qid", d.get("did")))
        text = d.get("text", d.get("query_txt", d.get("txt")))
        image = d.get("image", d.get("query_img_path", d.get("img_path")))
        video = d.get("video")
        # JSON can hold any type where a path or an id belongs; a wrong one must fail here, naming the field,
        # not as a TypeError deep in PIL (a dict id would otherwise become the string "{'x': 1}")
        if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
            raise ItemError(None, f"id must be a string or an integer, got {type(ident).__name__} {ident!r:.60}")
        for name, value in (("id", ident), ("image path", image), ("video path", video)):
            if isinstance(value, str) and _SURROGATE.search(value):
                raise ItemError(None, f"{name} {value!r:.60} is not valid Unicode (a lone surrogate)")
        who = None if ident is None else cls(text="-", id=str(ident))  # names the item in the errors below
        if image is not None and not isinstance(image, str):
            raise ItemError(who, f"image path must be a string, got {type(image).__name__} {image!r:.60}")
        if video is not None and not isinstance(video, str) and not (
                isinstance(video, list) and all(isinstance(v, str) for v in video)):
            raise ItemError(who, f"video must be a path or a list of frame paths, got {video!r:.60}")

        def resolve(p: Any) -> Any:
            if isinstance(p, str) and root is not None and not Path(p).is_absolute():
                return str(Path(root) / p)
            return p

        image = resolve(image) if image else None
        if isinstance(video, list):
            video = [resolve(v) for v in video]
        elif video:
            video = resolve(video)
        known = {"id", "qid", "did", "text", "query_txt", "txt", "image", "query_img_path", "img_path", "video",
                 "instruction"}
        meta = {k: v for k, v in d.items() if k not in known}
        return cls(text=text or None, image=image, video=video or None, instruction=d.get("instruction"),
                   id=None if ident is None else str(ident), meta=meta)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "modality": self.modality}
        if self.text is not None:
            out["text"] = self.text
        if isinstance(self.image, str | Path):
            out["image"] = str(self.image)
        if isinstance(self.video, str | Path):
            out["video"] = str(self.video)
        if self.instruction:
            out["instruction"] = self.instruction
        return out


def load_image(source: ImageLike, max_pixels: int = MAX_PIXELS, item: Item | None = None) -> Image.Image:
    """Open and fully decode an image as RGB, turning every failure into an ItemError."""
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, bytes):
            if not source:
                raise ItemError(item, "image bytes are empty")
            fp: Any = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.exists():
                raise ItemError(item, f"image file not found: {path}", "check the path and the data root")
            if path.is_dir():
                raise ItemError(item, f"image path is a directory: {path}")
            if path.stat().st_size == 0:
                raise ItemError(item, f"image file is empty (0 bytes): {path}")
            fp = path
        try:
            with Image.open(fp) as opened:
                w, h = opened.size
                if w * h > max_pixels:
                    raise ItemError(item, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}",
                                    "downscale it or raise max_pixels")
                opened.load()
                img = opened.copy()
        except ItemError:
            raise
        except Image.DecompressionBombError as exc:  # PIL's own guard fires at open for > 2× its limit
            raise ItemError(item, f"image is over the pixel limit of {max_pixels:,} ({exc})",
                            "downscale it or raise max_pixels") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ItemError(item, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    w, h = img.size
    if w * h > max_pixels:
        raise ItemError(item, f"image is {w}x{h}, over the pixel limit {max_pixels:,}")
    if w == 0 or h == 0:
        raise ItemError(item, "image has zero width or height")
    if min(w, h) < MIN_IMAGE_SIDE:
        raise ItemError(item, f"image is {w}x{h}: a side under {MIN_IMAGE_SIDE} pixels is too small to embed",
                        "use a larger image")
    if max(w, h) / min(w, h) > MAX_ASPECT_RATIO:
        raise ItemError(item, f"image is {w}x{h}: aspect ratio {max(w, h) / min(w, h):.0f}:1 is over "
                        f"{MAX_ASPECT_RATIO}:1, more than the models take", "crop or pad it")
    return img.convert("RGB") if img.mode != "RGB" else img


def _decode_video(path: Path, max_frames: int, item: Item, max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    if not path.exists():
        raise ItemError(item, f"video file not found: {path}")
    try:
        import av  # PyAV, optional extra umr[video]
    except ImportError as exc:
        raise ItemError(item, "decoding video files needs PyAV", "pip install 'umr[video]', or pass frames") from exc
    try:
        # Two passes so only the sampled frames are ever converted and kept: holding every frame of a long video
        # as a PIL image needs gigabytes. Counting packets (one a frame) is cheap: nothing is decoded.
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > max_pixels:
                raise ItemError(item, f"video frames are {w}x{h}, over the pixel limit {max_pixels:,}",
                                "downscale it or raise max_pixels")
            total = sum(1 for packet in container.demux(stream) if packet.size)
        step = max(total / max_frames, 1.0)
        wanted = {int(i * step) for i in range(min(total, max_frames))}
        with av.open(str(path)) as container:
            frames = [f.to_image().convert("RGB") for k, f in enumerate(container.decode(video=0)) if k in wanted]
    except ItemError:
        raise
    except Exception as exc:  # PyAV raises many error types; all mean "unreadable video"
        raise ItemError(item, f"not a readable video ({type(exc).__name__}: {exc})") from exc
    return frames


def read_items(path: str | Path, root: str | Path | None = None) -> Iterator[Item]:
    """Items from a JSONL file, one object a line; a malformed line raises an error naming file and line."""
    from umr.jsonl import FileLineError, iter_jsonl

    path = Path(path)
    root = path.parent if root is None else root
    for lineno, obj in iter_jsonl(path):
        try:
            item = Item.from_dict(obj, root=root)
        except ItemError as exc:
            raise FileLineError(path, lineno, str(exc)) from exc
        yield item if item.id is not None else replace(item, id=f"{path.name}:{lineno}")


def as_items(values: Iterable[Item | str]) -> list[Item]:
    """Accept plain strings as text items, for convenience in notebooks."""
    return [v if isinstance(v, Item) else Item(text=v) for v in values]
