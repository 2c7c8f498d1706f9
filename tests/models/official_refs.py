"""Independent transcriptions of each published model's official inference logic (plain transformers/torch,
nothing from umr). Each function embeds one item, the way the reference code embeds it in a batch of one.

  gme       gme_inference.py (hub Alibaba-NLP/gme-Qwen2-VL-2B-Instruct): GmeQwen2VL.embed / forward, fetch_image
  lamra     GitHub Code-kunkun/LamRA: dataset/datasets_mbeir.py (QueryDataset, CandidateDataset, format_string),
            collators/mbeir_eval.py, collators/qwen2_vision_process.py, models/qwen2_vl.py
  u-marvel  GitHub chaxjli/U-MARVEL: the same files + models/qwen2_vl_finetune.py (_global_mean_pool, instruction
            mask), models/qwen2_vl_bidirectional_atten.py, eval/eval_mbeir_local_finetune_fast.py's flags
  mm-embed  modeling_nvmmembed.py (NVMMEmbedModel.encode / forward, as carried by mteb) and NV-Embed's
            LatentAttentionModel; sglang's NVMMEmbedModel.load_weights for the key layout

Those references ran transformers < 4.52, where `self.model` of Qwen2-VL was the text decoder and was called
with position_ids=None: plain 1-D positions for every token. Here that is `model.model.language_model(...)`
with position_ids=None, which transformers 4.57 fills with 0..n-1 the same way.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open

SYSTEM = "You are a helpful assistant."


# -- shared pieces ------------------------------------------------------------------------------------------
def format_string(s: str | None) -> str:
    """UniIR / LamRA / U-MARVEL format_string."""
    s = (s or "").replace("\r", "").strip().strip('"')
    if s:
        s = s[0].upper() + s[1:]
        s = s + "." if s[-1] not in [".", "?", "!"] else s
    return s


def round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def fetch_image(image: Image.Image, min_pixels: int, max_pixels: int, factor: int = 28) -> Image.Image:
    """qwen-vl-utils' fetch_image (as vendored by GME, LamRA and U-MARVEL): smart_resize, then PIL's resize."""
    width, height = image.size
    h_bar, w_bar = max(factor, round_by_factor(height, factor)), max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar, w_bar = floor_by_factor(height / beta, factor), floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = ceil_by_factor(height * beta, factor), ceil_by_factor(width * beta, factor)
    return image.convert("RGB").resize((w_bar, h_bar))


def _qwen_inputs(tok, proc, text: str, image: Image.Image | None, max_length: int | None):
    """The processor of transformers < 4.52: expand <|image_pad|> by the grid, then tokenise (and truncate)."""
    kwargs = {}
    if image is not None:
        px = proc(images=[image], return_tensors="pt")
        n = int(px["image_grid_thw"].prod()) // proc.merge_size ** 2
        text = text.replace("<|image_pad|>", "<|image_pad|>" * n, 1)
        kwargs = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
    enc = tok([text], return_tensors="pt", truncation=max_length is not None, max_length=max_length)
    return enc["input_ids"], enc["attention_mask"], kwargs


def _qwen_hidden(model, ids, mask, pixels, bidirectional: bool = False) -> torch.Tensor:
    """inputs_embeds with the visual features in the image slots, then the text decoder, position_ids=None."""
    embeds = model.model.language_model.embed_tokens(ids)
    if pixels:
        feats = model.model.visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"])
        embeds[ids == model.config.image_token_id] = feats
    attn = mask
    if bidirectional:  # U-MARVEL's _prepare_bidirectional_attention_mask: padding only, additive
        attn = ((1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min).expand(
            -1, 1, ids.shape[1], -1)
    return model.model.language_model(inputs_embeds=embeds, attention_mask=attn, position_ids=None).last_hidden_state


def load_qwen(path: str):
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    model = Qwen2VLForConditionalGeneration.from_pretrained(path, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "right"
    return model, tok, Qwen2VLImageProcessor.from_pretrained(path)


# -- GME ------------------------------------------------------------------------------------------------------
def gme(path: str, text: str | None, image: Image.Image | None, instruction: str | None, is_query: bool):
    from transformers import Qwen2VLImageProcessor

    model, tok, _ = load_qwen(path)
    proc = Qwen2VLImageProcessor.from_pretrained(path, min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28)
    if not is_query or instruction is None:
        instruction = SYSTEM
    input_str = ""
    if image is not None:
        input_str += "<|vision_start|><|image_pad|><|vision_end|>"
        image = fetch_image(image, 4 * 28 * 28, 16384 * 28 * 28)
    if text is not None:
        input_str += text
    msg = (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{input_str}<|im_end|>\n"
           "<|im_start|>assistant\n<|endoftext|>")
    ids, mask, pixels = _qwen_inputs(tok, proc, msg, image, max_length=1800)
    with torch.no_grad():
        hidden = _qwen_hidden(model, ids, mask, pixels)
    return F.normalize(hidden[0, int(mask.sum()) - 1], dim=-1).numpy()


# -- LamRA / U-MARVEL -----------------------------------------------------------------------------------------
def _chat(content: str, has_image: bool) -> str:
    """Qwen2-VL's chat template on [user: (image) + text, assistant: "<emb>."] with add_generation_prompt."""
    vision = "<|vision_start|><|image_pad|><|vision_end|>" if has_image else ""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{vision}{content}<|im_end|>\n"
            "<|im_start|>assistant\n<emb>.<|im_end|>\n<|im_start|>assistant\n")


def lamra_family(kind: str, path: str, text: str | None, image: Image.Image | None, instruction: str | None,
                 is_query: bool):
    model, tok, proc = load_qwen(path)
    if image is not None:
        image = fetch_image(image, 4 * 28 * 28, 300 * 28 * 28)
    if is_query:
        prompt = format_string(instruction)
        if kind == "u-marvel":
            prompt = "<instruction_start>" + prompt + "<instruction_end>"
        txt = format_string(f"{prompt} {text or ''}")
        data = {"txt": txt} if image is None else ({"image": 1} if txt == "" else {"txt": txt, "image": 1})
    else:
        txt = format_string(text or "")
        if image is not None and (kind == "u-marvel" or txt != ""):  # U-MARVEL tests `cand_txt is not None`
            data = {"txt": txt, "image": 1}
        elif image is not None:
            data = {"image": 1}
        else:
            data = {"txt": txt}
    if "txt" in data and "image" in data:
        content = f"{data['txt']}\nSummarize above image and sentence in one word: "
    elif "txt" in data:
        content = f"{data['txt']}\nSummarize above sentence in one word: "
    else:
        content = "\nSummarize above image in one word: "
    # The candidate collator truncates at 1024 tokens; the query collator does not.
    ids, mask, pixels = _qwen_inputs(tok, proc, _chat(content, image is not None), image,
                                     max_length=None if is_query else 1024)
    with torch.no_grad():
        hidden = _qwen_hidden(model, ids, mask, pixels, bidirectional=kind == "u-marvel")[0]
    ids = ids[0]
    if kind == "lamra":
        emb = tok.convert_tokens_to_ids("<emb>")
        at = int(torch.argmax((ids == emb).int())) - 1  # a cut <emb> gives argmax 0: index -1, the last token
        vec = hidden[at]
    else:
        labels = ids.clone()
        labels[labels == tok.pad_token_id] = -100
        start, end = (tok.convert_tokens_to_ids(t) for t in ("<instruction_start>", "<instruction_end>"))
        inside = ((ids == start).cumsum(0) - (ids == end).cumsum(0)) > 0
        labels[inside | (ids == end)] = -100
        keep = (labels != -100).float().unsqueeze(-1)
        vec = (hidden * keep).sum(0) / keep.sum(0).clamp(min=1e-7)
    return F.normalize(vec, dim=-1).numpy()


# -- MM-Embed -------------------------------------------------------------------------------------------------
def _mm_embed_model(path: str):
    """LLaVA-NeXT from config, the checkpoint's weights placed by hand (sglang's name map: language_model →
    the LLM; vision_tower, multi_modal_projector, image_newline as they are), and the latent head's tensors."""
    from transformers import AutoConfig, LlavaNextForConditionalGeneration

    config = AutoConfig.from_pretrained(path)
    model = LlavaNextForConditionalGeneration(config).eval()
    own = model.state_dict()
    head: dict[str, torch.Tensor] = {}
    loaded = set()
    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118
            if key.startswith("latent_attention_model."):
                head[key.removeprefix("latent_attention_model.")] = f.get_tensor(key)
                continue
            target = "model." + key
            assert target in own, key
            own[target].copy_(f.get_tensor(key))
            loaded.add(target)
    assert set(own) - loaded == {"lm_head.weight"}
    for layer in model.model.language_model.layers:  # NV-Embed's BidirectionalMistralModel
        layer.self_attn.is_causal = False
    return model, head


def _latent_attention(head: dict[str, torch.Tensor], hiddens: torch.Tensor, pool_mask: torch.Tensor, heads: int):
    """NV-Embed LatentAttentionModel.forward: PreNorm cross-attention to the latents + PreNorm GEGLU FF."""
    def ln(x, name):
        return F.layer_norm(x, x.shape[-1:], head[name + ".weight"], head[name + ".bias"])

    b = "cross_attend_blocks."
    x = ln(hiddens, b + "0.norm")
    context = ln(head["latents"][None].expand(hiddens.shape[0], -1, -1), b + "0.norm_context")
    q = x @ head[b + "0.fn.to_q.weight"].T
    k, v = (context @ head[b + "0.fn.to_kv.weight"].T).chunk(2, dim=-1)
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
    att = att.transpose(1, 2).reshape(hiddens.shape[0], hiddens.shape[1], -1) @ head[b + "0.fn.to_out.weight"].T
    hiddens = att + hiddens
    y = ln(hiddens, b + "1.norm") @ head[b + "1.fn.net.0.weight"].T + head[b + "1.fn.net.0.bias"]
    y, gates = y.chunk(2, dim=-1)
    hiddens = (y * F.gelu(gates)) @ head[b + "1.fn.net.2.weight"].T + head[b + "1.fn.net.2.bias"] + hiddens
    s = torch.sum(hiddens * pool_mask.unsqueeze(-1).float(), dim=1)
    return s / pool_mask.sum(dim=1, keepdim=True).float()


def mm_embed(path: str, text: str | None, image: Image.Image | None, instruction: str | None, is_query: bool,
             heads: int = 8):
    from transformers import AutoImageProcessor, AutoTokenizer

    model, head = _mm_embed_model(path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side, tok.add_eos_token = "right", True  # config.padding_side / config.add_eos_token
    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)
    if is_query:
        template = "Query: <image>\n<text>"
        if instruction is not None:
            template = f"Instruct: {instruction}\n{template}"
    else:
        template = "<image>\n<text>"
    prompt = template if image is not None else template.replace("<image>\n", "")
    prompt = prompt.replace("<text>", text if text is not None else "")
    enc = tok([prompt], return_tensors="pt", padding="longest", max_length=512, truncation=True)
    ids = enc["input_ids"][0]
    n_instr = len(tok(prompt.split("\nQuery: ")[0])["input_ids"]) if "\nQuery: " in prompt else 0
    cfg = model.config
    with torch.no_grad():
        embeds = model.model.language_model.embed_tokens(ids)
        if image is not None:  # global tile only, then pack_image_features: 576 (here 64) features + image_newline
            tile = proc(images=[image], return_tensors="pt")["pixel_values"][:, 0]
            states = model.model.vision_tower(tile, output_hidden_states=True).hidden_states[cfg.vision_feature_layer]
            feats = model.model.multi_modal_projector(states[:, 1:])[0]
            feats = torch.cat([feats, model.model.image_newline[None]], dim=0)
            at = int((ids == cfg.image_token_index).nonzero()[0])
            embeds = torch.cat([embeds[:at], feats, embeds[at + 1:]])  # the legacy merge, one image
            if n_instr and "<image>" in prompt.split("\nQuery: ")[0]:
                n_instr += feats.shape[0] - 1
        hidden = model.model.language_model(inputs_embeds=embeds[None]).last_hidden_state
        pool = torch.ones(1, hidden.shape[1])
        pool[0, :n_instr] = 0
        vec = _latent_attention(head, hidden, pool, heads)[0]
    return F.normalize(vec, dim=-1).numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
