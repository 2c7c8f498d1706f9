"""The three fused-modal query kinds GME synthesises, and where each lands in M-BEIR's task table.

    it2t   (image + text) → text            task 6  (e.g. image + "what is this made of?" → passage)
    it2it  (image + text) → (image + text)  task 8  (image + question → illustrated entry)
    t2it   text → (image + text)            task 2  (question → illustrated entry)

Each kind is written as its own M-BEIR dataset (`synth<kind>`, dataset id `base + offset`), so the training
reader draws the kind's own instructions and an eval filter can name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from umr.data.mbeir import TASKS
from umr.errors import UmrError


@dataclass(frozen=True)
class Kind:
    """One query kind: its task id, modalities and the instructions its queries are trained with."""

    name: str
    task_id: int
    offset: int  # dataset id = dataset_id_base + offset
    instructions: tuple[str, ...]

    @property
    def query_modality(self) -> str:
        return TASKS[self.task_id][0]

    @property
    def cand_modality(self) -> str:
        return TASKS[self.task_id][1]

    @property
    def query_has_image(self) -> bool:
        return "image" in self.query_modality

    @property
    def cand_has_image(self) -> bool:
        return "image" in self.cand_modality

    @property
    def dataset(self) -> str:
        return f"synth{self.name}"

    def dataset_id(self, base: int) -> str:
        return str(base + self.offset)


KINDS: dict[str, Kind] = {
    "it2t": Kind("it2t", 6, 0, (
        "Retrieve the passage that answers the question about the image.",
        "Find the text that answers this question about the pictured object.",
        "Which passage answers the question about this picture?",
    )),
    "it2it": Kind("it2it", 8, 1, (
        "Retrieve the image with its description that answers the question about this image.",
        "Find the illustrated entry that answers this question about the picture.",
        "Which image and text answer the question about this image?",
    )),
    "t2it": Kind("t2it", 2, 2, (
        "Retrieve the image with its description that matches the question.",
        "Find the picture and text this question asks for.",
        "Which illustrated entry answers this question?",
    )),
}


def parse_kinds(names: list[str] | None) -> list[Kind]:
    """Kinds by name (None = all three, in the fixed order it2t, it2it, t2it)."""
    if not names:
        return list(KINDS.values())
    bad = [n for n in names if n not in KINDS]
    if bad:
        raise UmrError(f"unknown kind(s) {bad}; use some of {list(KINDS)}")
    return [KINDS[n] for n in KINDS if n in names]
