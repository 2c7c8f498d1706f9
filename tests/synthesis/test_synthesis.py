"""Synthesis pipeline: retriever-consistency filter, de-duplication, resume, output readable by the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synth_helpers import CountingGenerator, RoutedEmbedder, image_folder

from umr.synthesis import SynthConfig, synthesize
from umr.synthesis.dedup import Deduper, normalise
from umr.synthesis.generators import Request
from umr.synthesis.kinds import KINDS
from umr.synthesis.rule import RuleGenerator, facts
from umr.synthesis.sources import Source, load_sources
from umr.train.data import read_mbeir_root_pairs

N = 6


def _outputs(root: Path) -> dict[str, bytes]:
    """Every written file except the resume bookkeeping."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "progress" not in p.parts}


def test_sources_from_folder_with_sidecars(tmp_path: Path) -> None:
    src = load_sources(image_folder(tmp_path / "imgs", N))
    assert len(src) == N + 1
    assert sum(s.text is None for s in src) == 1  # the caption-less image is kept, text-less
    assert src[0].image_rel == "images/img_0.png" and "Varn" in src[0].text


def test_filter_drops_pairs_whose_positive_is_not_retrievable(tmp_path: Path) -> None:
    bad = {1, 4}  # these sources' queries point at the next candidate, so their positive ranks 2nd, not 1st
    emb = RoutedEmbedder(N, lambda k: (k + 1) % N if k in bad else k)
    cfg = SynthConfig(source=str(image_folder(tmp_path / "imgs", N)), out=str(tmp_path / "out"),
                      kinds=["it2t", "it2it"], top_k=1)
    report = synthesize(cfg, filter_embedder=emb)
    assert report.no_text == 1
    for kind in ("it2t", "it2it"):
        c = report.counts[kind]
        assert (c["generated"], c["duplicates"], c["filtered_out"], c["kept"]) == (N, 0, len(bad), N - len(bad))
        rows = [json.loads(line) for line in (tmp_path / "out" / "query" / "train").glob(f"*synth{kind}_*")
                .__next__().read_text().splitlines()]
        kept = {int(r["query_src_content"]["source"].split("_")[1].split(".")[0]) for r in rows}
        assert kept == set(range(N)) - bad
    # a looser filter keeps them all: the second-ranked positives are within top 2
    report2 = synthesize(SynthConfig(**{**cfg.__dict__, "top_k": 2}), filter_embedder=emb)
    assert report2.counts["it2t"]["kept"] == N and report2.ranked_now == 0  # ranks came from the resume file


def test_dedup_exact_and_normalised() -> None:
    d = Deduper()
    assert d.check("What is this?") == "new"
    assert d.check("What is this?") == "exact"
    assert d.check("  what IS this ") == "normalised"
    assert d.check("What is this?", scope="img_1.png") == "new"  # same question about another image is new
    assert normalise("Where's it, from?") == "where s it from"


class _ConstantText(RuleGenerator):
    name = "constant"

    def generate(self, requests: list[Request]) -> list[str | None]:
        return ["Which object is from Varn?" if i % 2 else "which object is FROM varn" for i in range(len(requests))]


def test_pipeline_counts_duplicates(tmp_path: Path) -> None:
    cfg = SynthConfig(source=str(image_folder(tmp_path / "imgs", N)), out=str(tmp_path / "out"),
                      kinds=["t2it", "it2t"])
    report = synthesize(cfg, generator=_ConstantText())
    assert report.counts["t2it"]["duplicates"] == N - 1 and report.counts["t2it"]["kept"] == 1
    assert report.counts["it2t"]["duplicates"] == 0  # image queries: one question per image is not a duplicate
    summary = json.loads((tmp_path / "out" / "synthesis.json").read_text())
    assert summary["counts"]["t2it"]["duplicates"] == N - 1
    assert "duplicates" in report.table().splitlines()[0]


def test_resume_skips_finished_work_and_writes_same_bytes(tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "imgs", N)
    cfg = SynthConfig(source=str(folder), out=str(tmp_path / "out"), chunk=4)
    crashing = CountingGenerator(fail_after=8)  # 18 requests in chunks of 4: dies in the third chunk
    with pytest.raises(KeyboardInterrupt):
        synthesize(cfg, generator=crashing, filter_embedder=RoutedEmbedder(N, lambda k: k))
    gen = CountingGenerator()
    first = synthesize(cfg, generator=gen, filter_embedder=RoutedEmbedder(N, lambda k: k))
    assert gen.calls == 3 * N - 8 and first.generated_now == 3 * N - 8  # interrupted work continued
    files = _outputs(tmp_path / "out")
    again = CountingGenerator()
    second = synthesize(cfg, generator=again, filter_embedder=RoutedEmbedder(N, lambda k: k))
    assert again.calls == 0 and second.generated_now == 0 and second.ranked_now == 0
    assert _outputs(tmp_path / "out") == files
    assert second.counts == first.counts


def test_output_is_training_data(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = synthesize(SynthConfig(source=str(image_folder(tmp_path / "imgs", N)), out=str(out)))
    pairs = read_mbeir_root_pairs(out)
    assert len(pairs) == sum(c["kept"] for c in report.counts.values()) > 0
    by_mod = {(p.query.modality, p.positive.modality) for p in pairs}
    assert by_mod == {("image,text", "text"), ("image,text", "image,text"), ("text", "image,text")}
    assert all(p.query.instruction for p in pairs)  # drawn from the kinds' instruction rows
    assert all(Path(str(p.query.image)).is_file() for p in pairs if p.query.image is not None)


def test_world_sources_and_mixing(tmp_path: Path) -> None:
    from umr.data.world import build_world
    from umr.train.config import TrainConfig
    from umr.train.trainer import load_config_pairs

    world = tmp_path / "world"
    build_world(world, "tiny", seed=0)
    out = tmp_path / "synth"
    report = synthesize(SynthConfig(source=str(world), out=str(out), limit=40))
    assert all(c["sources"] == 40 for c in report.counts.values())
    sources = load_sources(world)
    assert all("/test/" not in s.image_rel and "/val/" not in s.image_rel for s in sources)  # train split only
    main = read_mbeir_root_pairs(world)
    mixed = load_config_pairs(TrainConfig.of(data=str(world), mix_data=str(out), mix_share=0.2))
    assert len(mixed) > len(main)
    assert any(p.query.id.split(":")[0] in ("90", "91", "92") for p in mixed)


def test_rule_generator_facts_and_kinds() -> None:
    text = "The Kraivo is a red star. It was first recorded in 1820 in Varn and is made of glass."
    assert facts(text) == {"year": "1820", "material": "glass", "place": "Varn", "name": "Kraivo"}
    src = Source("s1", Path("a.png"), "a.png", text)
    gen = RuleGenerator()
    t2it = gen.generate([Request(src, KINDS["t2it"])])[0]
    assert "Kraivo" not in t2it and t2it.endswith("?")  # a text query names facts, not the name
    assert gen.generate([Request(src, KINDS["it2t"])]) == gen.generate([Request(src, KINDS["it2t"])])
    assert gen.generate([Request(Source("s2", Path("b.png"), "b.png", None), KINDS["it2t"])]) == [None]


def test_it2it_query_image_is_a_mirrored_copy(tmp_path: Path) -> None:
    from PIL import Image, ImageOps

    folder = image_folder(tmp_path / "imgs", N)
    for view in ("mirror", "same"):
        out = tmp_path / view
        synthesize(SynthConfig(source=str(folder), out=str(out), kinds=["it2it", "it2t"], top_k=1, query_image=view),
                   filter_embedder=RoutedEmbedder(N, lambda k: k))
        pairs = read_mbeir_root_pairs(out)
        it2it = [p for p in pairs if p.positive.modality == "image,text"]
        it2t = [p for p in pairs if p.positive.modality == "text"]
        assert len(it2it) == len(it2t) == N
        for p in it2it:
            q, pos = Path(str(p.query.image)), Path(str(p.positive.image))
            assert (q != pos) == (view == "mirror") and q.name == pos.name
            if view == "mirror":
                assert "query-mirror" in q.parts
                with Image.open(q) as a, Image.open(pos) as b:
                    assert a.convert("RGB").tobytes() == ImageOps.mirror(b.convert("RGB")).tobytes()
        assert all("query-mirror" not in Path(str(p.query.image)).parts for p in it2t)  # text positive: no copy



def test_output_is_in_the_real_training_layout(tmp_path: Path) -> None:
    """Per-kind dataset files with task ids, the union file and the global pool, no per-task local train pools:
    the layout of the real download (and of the world), so `tasks:` filters select kinds by task."""
    out = tmp_path / "out"
    synthesize(SynthConfig(source=str(image_folder(tmp_path / "imgs", N)), out=str(out)))
    names = sorted(p.name for p in (out / "query" / "train").glob("*.jsonl"))
    assert len(names) == 3 and all("_task" not in n for n in names)
    assert (out / "query" / "union_train" / "mbeir_union_up_train.jsonl").is_file()
    assert not (out / "cand_pool" / "local").exists()
    pairs, it2it = read_mbeir_root_pairs(out), read_mbeir_root_pairs(out, tasks=["task8"])
    assert 0 < len(it2it) < len(pairs)
    assert {(p.query.modality, p.positive.modality) for p in it2it} == {("image,text", "image,text")}
