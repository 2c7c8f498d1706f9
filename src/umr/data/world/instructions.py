"""Task instructions of the world: four phrasings per (dataset, query modality, candidate modality).

The evaluator picks one per query (deterministically); a trainer may sample them, as UniIR does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from umr.data.mbeir import TASKS

_PROMPTS: dict[tuple[str, int], tuple[str, ...]] = {
    ("VisualNews", 0): ("Find the news photo that matches this caption.", "Retrieve the press image described here.",
                        "Which news picture does this caption belong to?", "Get the photo for this news caption."),
    ("VisualNews", 3): ("Find the news caption for this photo.", "Retrieve the caption written for this image.",
                        "Which press caption describes this picture?", "Write-up for this news photo, please."),
    ("Fashion200K", 0): ("Find the product image for this listing.", "Retrieve the item shown by this description.",
                         "Which catalogue photo matches these product details?", "Show the product listed here."),
    ("Fashion200K", 3): ("Find the product listing for this image.", "Retrieve the catalogue text for this item.",
                         "Which description lists this product?", "Give the listing that matches this photo."),
    ("MSCOCO", 0): ("Find an image that matches the given caption.", "Retrieve the picture this sentence describes.",
                    "Identify the image showing what the caption says.", "Which image fits this description?"),
    ("MSCOCO", 3): ("Find a caption describing this image.", "Retrieve a sentence that describes the picture.",
                    "Which caption fits this image?", "Describe this image by retrieving its caption."),
    ("WebQA", 1): ("Retrieve the passage that answers this question.", "Find a text that answers the question.",
                   "Which article answers this?", "Get the encyclopedia passage for this question."),
    ("WebQA", 2): ("Retrieve an image with its description that answers the question.",
                   "Find the illustrated entry that answers this.", "Which picture and text answer the question?",
                   "Get the image-text card for this question."),
    ("EDIS", 2): ("Find the news image and headline for this story.", "Retrieve the photo and headline reported.",
                  "Which headline and picture cover this news?", "Match this news line to its illustrated headline."),
    ("NIGHTS", 4): ("Find an image that looks the same as this one.", "Retrieve another photo of the same object.",
                    "Which picture is most similar to this one?", "Find a near-identical image."),
    ("OVEN", 6): ("Retrieve the encyclopedia entry about the object in the image.",
                  "Find the passage that identifies this object.", "Which article describes what is pictured?",
                  "Name the pictured object by finding its entry."),
    ("OVEN", 8): ("Retrieve the illustrated entry about the pictured object.",
                  "Find the image and text identifying this object.", "Which image-text entry shows this object?",
                  "Match this picture and question to an illustrated entry."),
    ("InfoSeek", 6): ("Answer the question about the pictured object by retrieving a passage.",
                      "Find the passage that answers this question about the image.",
                      "Which text answers the question on this object?", "Retrieve the fact asked about here."),
    ("InfoSeek", 8): ("Answer the question about the pictured object by retrieving an illustrated fact.",
                      "Find the image-text fact that answers this question.",
                      "Which illustrated entry answers the question about the image?",
                      "Retrieve the card with the fact asked about here."),
    ("FashionIQ", 7): ("Find the product that looks like this one with the requested changes.",
                       "Retrieve the item after applying these edits.", "Which product is this, modified as said?",
                       "Show this item changed as described."),
    ("CIRR", 7): ("Retrieve the image that results from applying the change to this one.",
                  "Find the picture edited as the text says.", "Which image shows this scene after the change?",
                  "Apply the modification and find the matching image."),
}


def instruction_rows(datasets: Iterable[Any]) -> list[tuple[str, str, str, str, list[str]]]:
    """(query modality, cand modality, dataset display name, dataset id, prompts) rows for the TSV."""
    rows = []
    for spec in datasets:
        for task in spec.tasks:
            qmod, cmod = TASKS[task]
            rows.append((qmod, cmod, spec.display, str(spec.dsid), list(_PROMPTS[(spec.analogue, task)])))
    return rows
