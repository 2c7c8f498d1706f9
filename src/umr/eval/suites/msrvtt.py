"""Text-to-video retrieval, MSR-VTT style (the 1k-A "JSFusion" test split most papers report).

Files in ``--data``::

    MSRVTT_JSFUSION_test.csv   key,vid_key,video_id,sentence
                               ret0,msr7579,video7579,a girl wearing red top and black trouser is putting a sweater...
    videos/all/<video_id>.mp4  (also looked for in videos/, MSRVTT/videos/all/ and the data folder itself)

Any other CSV with those columns can be named with ``split`` (``--split my_test`` reads ``my_test.csv``).
Each sentence queries the videos; each video queries the sentences (a hit when any of its sentences ranks top k).

Video embedding (``opts.video_mode``): ``native`` passes the file to the model, which samples its own frames (umr's
MLLM and CLIP-SF embedders take videos); ``mean`` embeds ``opts.frames`` uniformly sampled frames as images and
averages their unit vectors (re-normalised); ``auto`` is native when the model takes videos, else mean.

Metrics: ``t2v R@1/5/10``, ``t2v MdR`` (median rank, 1-based), ``t2v MnR`` (mean rank), and the same for v2t.
Ties (``opts.ties``): equal scores rank by file order (videos in order of first appearance). CLIP4Clip's
``compute_metrics`` has no single rule: a query tied with m other candidates adds m + 1 ranks to its list, so
its number of queries grows; umr counts each query once.
Item ids: a sentence is its ``key``, a video its ``video_id``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from umr.errors import UmrError
from umr.eval.suites.metrics import first_hit_ranks, mean_rank, median_rank, recall_at_k
from umr.eval.suites.runner import Row, SuiteOptions, SuiteResult, Timer, encode, find_file, score_blocks
from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

KS = (1, 5, 10)
COLUMNS = ("key", "video_id", "sentence")
T2V = "Find a video that matches the given caption."
V2T = "Find a caption describing the given video."
VIDEO_MODES = ("auto", "native", "mean")


def supports_video(embedder: Embedder) -> bool:
    """Whether the model embeds a video Item itself (an explicit `supports_video` attribute wins)."""
    flag = getattr(embedder, "supports_video", None)
    if isinstance(flag, bool):
        return flag
    recipe = getattr(embedder, "recipe", None)
    if recipe is not None:
        return bool(getattr(recipe, "image_placeholder", "")) and getattr(recipe, "max_frames", 0) > 0
    return getattr(embedder, "max_frames", 0) > 0


def load(path: Path, data: Path) -> tuple[list[Item], list[Item], np.ndarray]:
    """(sentences, videos, owner): owner[s] is the row of sentence s's video."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    roots = [data / "videos" / "all", data / "videos", data / "MSRVTT" / "videos" / "all", data]
    sentences, videos, owner, row_of = [], [], [], {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FileLineError(path, 1, f"header lacks column {missing[0]!r} (needs {', '.join(COLUMNS)})")
        for rec in reader:
            line = reader.line_num
            if any(not (rec.get(c) or "").strip() for c in COLUMNS):
                raise FileLineError(path, line, f"row {rec.get('key')!r}: empty or missing key/video_id/sentence")
            vid = rec["video_id"].strip()
            if vid not in row_of:
                file = find_file([f"{vid}.mp4", f"{vid}.avi", f"{vid}.webm"], roots, path, line, f"video {vid!r}")
                row_of[vid] = len(videos)
                videos.append(Item(video=str(file), id=vid))
            sentences.append(Item(text=rec["sentence"].strip(), id=rec["key"].strip()))
            owner.append(row_of[vid])
    if not sentences:
        raise FileLineError(path, None, "no rows")
    return sentences, videos, np.asarray(owner, dtype=np.int64)


def encode_videos(embedder: Embedder, videos: list[Item], opts: SuiteOptions, query: bool) -> np.ndarray:
    """float32 [n, d]: the model's own video path, or the re-normalised mean of per-frame image embeddings."""
    mode = opts.video_mode
    if mode not in VIDEO_MODES:
        raise UmrError(f"video_mode must be one of {VIDEO_MODES}, got {mode!r}")
    instruction = V2T if query else None
    if mode == "native" or (mode == "auto" and supports_video(embedder)):
        return encode(embedder, videos, opts, instruction, query=query)
    frames, owner = [], []
    for i, video in enumerate(videos):
        loaded = video.load_frames(max_frames=opts.frames)  # an unreadable file raises ItemError naming the video
        frames += [Item(image=f, id=f"{video.id}#frame{j}") for j, f in enumerate(loaded)]
        owner += [i] * len(loaded)
    emb = encode(embedder, frames, opts, instruction, query=query)
    out = np.zeros((len(videos), emb.shape[1]), dtype=np.float64)
    np.add.at(out, np.asarray(owner), emb)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def _rank_metrics(prefix: str, ranks: np.ndarray) -> dict[str, float]:
    out = {f"{prefix} R@{k}": v for k, v in recall_at_k(ranks, KS).items()}
    out[f"{prefix} MdR"] = median_rank(ranks)
    out[f"{prefix} MnR"] = mean_rank(ranks)
    return out


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    name = opts.split or "MSRVTT_JSFUSION_test"
    path = data / (name if name.endswith(".csv") else f"{name}.csv")
    timer = Timer()
    sentences, videos, owner = load(path, data)
    if opts.max_queries is not None:  # the first N videos and their sentences
        videos = videos[:opts.max_queries]
        keep = owner < len(videos)
        sentences, owner = [s for s, k in zip(sentences, keep) if k], owner[keep]
    with timer("embed_s"):
        t_q = encode(embedder, sentences, opts, T2V, query=True)
        t_c = encode(embedder, sentences, opts) if opts.instructions else t_q
        v_c = encode_videos(embedder, videos, opts, query=False)
        v_q = encode_videos(embedder, videos, opts, query=True) if opts.instructions else v_c
    with timer("score_s"):
        t2v = np.concatenate([first_hit_ranks(s, owner[a:a + len(s), None], ties=opts.ties)
                              for a, s in score_blocks(t_q, v_c)])
        sents_of = [np.flatnonzero(owner == i) for i in range(len(videos))]
        v2t = np.concatenate([first_hit_ranks(s, sents_of[a:a + len(s)], ties=opts.ties)
                              for a, s in score_blocks(v_q, t_c)])
    mode = opts.video_mode if opts.video_mode != "auto" else ("native" if supports_video(embedder) else "mean")
    metrics = {**_rank_metrics("t2v", t2v), **_rank_metrics("v2t", v2t)}
    return SuiteResult(suite="msrvtt", data=str(data), rows=[Row(path.stem, metrics, len(sentences), len(videos))],
                       timings=timer.done(), notes=[f"video embedding: {mode}"
                                                    + (f" of {opts.frames} frames" if mode == "mean" else "")])
