"""Use any umr Embedder with the `mteb` package (retrieval tasks; text and image inputs), and define local tasks.

    import mteb
    from umr.eval.mteb_wrapper import MTEBEncoder, local_retrieval_task, main_scores
    model = MTEBEncoder(load_embedder("text"))                      # or tiny:gme, a trained checkpoint, …
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact"]), cache=None)   # hub tasks need internet
    task = local_retrieval_task("MyTask", corpus={"d1": "…"}, queries={"q1": "…"}, qrels={"q1": {"d1": 1}})
    print(main_scores(model, [task]))                               # {"MyTask": {"ndcg_at_10": …, …}}

Queries go through `encode_query` with the task's instruction (its metadata `prompt`, or `instructions[task]`
given to the wrapper), documents through `encode_document`, as umr's own evaluator does. Needs `pip install
umr[mteb]` (written against mteb 2.x).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from umr.items import Item
from umr.models.base import Embedder


class MTEBEncoder(AbsEncoder):
    """An mteb encoder around a umr Embedder: cosine similarity over its L2-normalised vectors."""

    def __init__(self, embedder: Embedder, name: str | None = None, instructions: Mapping[str, str] | None = None,
                 batch_size: int = 16) -> None:
        self.model = embedder
        self.instructions = dict(instructions or {})
        self.batch_size = batch_size
        label = name or str(embedder.describe().get("name", type(embedder).__name__))
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={
            "name": f"umr/{label.replace('/', '__')}", "revision": "local", "embed_dim": embedder.dim,
            "similarity_fn_name": ScoringFunction.COSINE, "modalities": ["text", "image"],
            "framework": ["PyTorch"], "use_instructions": True})

    def instruction(self, task_metadata: TaskMetadata) -> str | None:
        """The query instruction of a task: the wrapper's own for it, else the task's `prompt` (query part)."""
        if task_metadata.name in self.instructions:
            return self.instructions[task_metadata.name]
        prompt = task_metadata.prompt
        if isinstance(prompt, dict):
            prompt = prompt.get(PromptType.query.value)
        return prompt or None

    @staticmethod
    def items(inputs: Iterable[Mapping[str, Any]]) -> list[Item]:
        """Items from mteb's batches ({"text": [...], "image": [...]}; either may be missing)."""
        out = []
        for batch in inputs:
            texts, images = batch.get("text"), batch.get("image")
            n = len(texts) if texts is not None else len(images or [])
            for i in range(n):
                text = texts[i] if texts is not None else None
                image = images[i] if images is not None else None
                if image is None and not (text and text.strip()):
                    text = "[empty]"  # an empty document still needs a vector; an Item cannot be empty
                out.append(Item(text=text or None, image=image))
        return out

    def encode(self, inputs: Any, *, task_metadata: TaskMetadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:
        """[n, d] float32 for one of mteb's dataloaders: queries with the task instruction, documents plain."""
        items = self.items(inputs)
        batch_size = int(kwargs.get("batch_size") or self.batch_size)
        if prompt_type == PromptType.query:
            return self.model.encode_query(items, instruction=self.instruction(task_metadata),
                                             batch_size=batch_size)
        return self.model.encode_document(items, batch_size=batch_size)


def local_retrieval_task(name: str, corpus: Mapping[str, str], queries: Mapping[str, str],
                         qrels: Mapping[str, Mapping[str, int]], instruction: str | None = None,
                         split: str = "test") -> AbsTaskRetrieval:
    """A text retrieval task held in memory (no hub): corpus {doc id: text}, queries {qid: text},
    qrels {qid: {doc id: relevance}}; `instruction` becomes the task's query prompt."""
    from datasets import Dataset
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    metadata = TaskMetadata(
        name=name, type="Retrieval", main_score="ndcg_at_10", description=f"local retrieval task {name}",
        reference=None, dataset={"path": f"local/{name}", "revision": "local"}, category="t2t",
        eval_splits=[split], eval_langs=["eng-Latn"], date=None, dialect=[], domains=[], task_subtypes=[],
        license=None, annotations_creators=None, modalities=["text"], sample_creation=None, bibtex_citation=None,
        prompt={PromptType.query.value: instruction} if instruction else None)

    class _LocalTask(AbsTaskRetrieval):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            data = RetrievalSplitData(
                queries=Dataset.from_list([{"id": q, "text": t} for q, t in queries.items()]),
                corpus=Dataset.from_list([{"id": d, "text": t, "title": ""} for d, t in corpus.items()]),
                relevant_docs={q: dict(r) for q, r in qrels.items()}, top_ranked=None)
            self.dataset = {"default": {split: data}}
            self.data_loaded = True

    _LocalTask.metadata = metadata
    _LocalTask.__name__ = name
    return _LocalTask()


def main_scores(model: MTEBEncoder, tasks: list[AbsTaskRetrieval], split: str = "test") -> dict[str, dict[str, float]]:
    """Run mteb.evaluate without a result cache; {task name: the split's scores (ndcg_at_10, recall_at_5, …)}."""
    import mteb

    result = mteb.evaluate(model, tasks, cache=None, show_progress_bar=False)
    out = {}
    for task_result in result.task_results:
        scores = task_result.scores[split][0]
        out[task_result.task_name] = {k: float(v) for k, v in scores.items() if isinstance(v, int | float)}
    return out
