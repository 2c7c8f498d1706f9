"""An independent transcription of the official point-wise re-ranking code (plain transformers/torch, nothing
from umr): one (query, candidate) pair scored the way the reference scores it in a batch of one.

  lamra  GitHub Code-kunkun/LamRA @ 7286399 and chaxjli/U-MARVEL @ 2f8afed (the same code in both):
         dataset/datasets_mbeir_eval_rerank.py (get_instance, _prepare_data_dict, construct_rerank_messages),
         collators/eval_rerank.py (apply_chat_template(add_generation_prompt=True), process_vision_info),
         collators/qwen2_vision_process.py (fetch_image, MAX_PIXELS = 300·28·28),
         eval/eval_mbeir_rerank_pointwise.py (generate(..., do_sample=False, output_scores=True): scores[0],
         softmax over [Yes, No] of `tokenizer("Yes").input_ids[0]` / "No")

MM-Embed has no public re-ranking code (its paper describes a zero-shot prompt), so there is nothing to
transcribe for it here.
"""

from __future__ import annotations

import torch
from official_refs import SYSTEM, fetch_image, format_string  # tests/models (conftest.py puts it on the path)
from PIL import Image

# construct_rerank_messages' first text item, spelled out: the source breaks it with a backslash-newline, so the
# next line's indent (24 spaces) is inside the string.
LAMRA_TEXT = ("I will provide you with a query and a candidate. Please evaluate whether the candidate"
              "                        meets the requirements of the query. If it does, respond with 'Yes'; if it "
              "doesn't, responed with 'No'.")
VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def _data_dict(txt: str, image: Image.Image | None) -> dict:
    """_prepare_data_dict: text only, image only (empty text), or both."""
    if image is None:
        return {"txt": txt}
    if txt == "":
        return {"image": image}
    return {"txt": txt, "image": image}


def lamra_messages(query_text: str | None, query_image: Image.Image | None, instruction: str | None,
                   cand_text: str | None, cand_image: Image.Image | None) -> list[dict]:
    query = _data_dict(format_string(f"{format_string(instruction)} {query_text or ''}"), query_image)
    cand = _data_dict(format_string(cand_text or ""), cand_image)
    content = [{"type": "text", "text": LAMRA_TEXT}, {"type": "text", "text": "Query:"}]
    for side, head in ((query, None), (cand, "Candidate:")):
        if head:
            content.append({"type": "text", "text": head})
        if "image" in side:
            content.append({"type": "image", "image": side["image"]})
        if "txt" in side:
            content.append({"type": "text", "text": side["txt"]})
    return [{"role": "user", "content": content}]


def qwen2_vl_chat(messages: list[dict]) -> str:
    """Qwen2-VL's chat template with add_generation_prompt: the default system turn, content items joined as
    they are (an image is its vision placeholder)."""
    out = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
    for msg in messages:
        parts = [VISION if c["type"] == "image" else c["text"] for c in msg["content"]]
        out += f"<|im_start|>{msg['role']}\n{''.join(parts)}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def lamra_p_yes(path: str, query_text: str | None, query_image: Image.Image | None, instruction: str | None,
                cand_text: str | None, cand_image: Image.Image | None) -> float:
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    model = Qwen2VLForConditionalGeneration.from_pretrained(path).eval()  # with its generation_config.json
    tok = AutoTokenizer.from_pretrained(path)
    proc = Qwen2VLImageProcessor.from_pretrained(path)
    messages = lamra_messages(query_text, query_image, instruction, cand_text, cand_image)
    text = qwen2_vl_chat(messages)
    images = [fetch_image(c["image"], 4 * 28 * 28, 300 * 28 * 28) for c in messages[0]["content"]
              if c["type"] == "image"]
    kwargs = {}
    if images:  # the processor expands each <|image_pad|> in turn by its image's grid
        px = proc(images=images, return_tensors="pt")
        for grid in px["image_grid_thw"]:
            text = text.replace("<|image_pad|>", "<|placeholder|>" * (int(grid.prod()) // proc.merge_size ** 2), 1)
        text = text.replace("<|placeholder|>", "<|image_pad|>")
        kwargs = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
    enc = tok([text], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, **kwargs, max_new_tokens=1, output_scores=True, return_dict_in_generate=True,
                             do_sample=False)  # the reference asks for 128 new tokens; scores[0] is the same
    logits = out.scores[0][0]
    pair = torch.FloatTensor([logits[tok("Yes").input_ids[0]], logits[tok("No").input_ids[0]]])
    return float(torch.nn.functional.softmax(pair, dim=0)[0])
