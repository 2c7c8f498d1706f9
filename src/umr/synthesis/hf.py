"""A generator backed by any Hugging Face causal LM, or a Qwen2-VL-family MLLM that also sees the image.

    gen = HFGenerator("Qwen/Qwen2-VL-2B-Instruct")        # hub id (internet) or a local folder
    gen = HFGenerator("runs/tiny-lm", max_new_tokens=16)   # tests: a tiny random model built from a config

The prompt asks for a query of the request's kind about the source (its text; the image too for an MLLM) and the
first line of the reply is the query. Greedy decoding by default, so a rerun writes the same text; with
`do_sample=True` every request is sampled under its own seed. A random model writes gibberish; the retriever
consistency filter is what removes such queries.
"""

from __future__ import annotations

from typing import Any

import torch

from umr.synthesis.generators import Request

PROMPTS = {
    "it2t": "Write one question about the pictured object that this text answers.\nText: {text}\nQuestion:",
    "it2it": "Write one question about the pictured object whose answer is in this picture and text.\n"
             "Text: {text}\nQuestion:",
    "t2it": "Write one search query that finds this picture and its text without seeing the picture.\n"
            "Text: {text}\nQuery:",
}
_VL_TYPES = ("qwen2_vl", "qwen2_5_vl")
_VISION = "<|vision_start|>{pads}<|vision_end|>"


class HFGenerator:
    """Query writing with `model.generate`; batched, left-padded, on CPU or GPU."""

    def __init__(self, model: str, max_new_tokens: int = 32, do_sample: bool = False, temperature: float = 0.7,
                 batch_size: int = 8, device: str | None = None, max_text_chars: int = 600) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.name = f"hf:{model}"
        self.max_new_tokens, self.do_sample, self.temperature = max_new_tokens, do_sample, temperature
        self.batch_size, self.max_text_chars = batch_size, max_text_chars
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        config = AutoConfig.from_pretrained(model)
        self.vision = config.model_type in _VL_TYPES
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if self.vision:
            import transformers
            from transformers import Qwen2VLImageProcessor

            cls = getattr(transformers, "Qwen2_5_VLForConditionalGeneration" if config.model_type == "qwen2_5_vl"
                          else "Qwen2VLForConditionalGeneration")
            self.model = cls.from_pretrained(model, torch_dtype=dtype)
            self.image_processor = Qwen2VLImageProcessor.from_pretrained(model)
        else:
            from transformers import AutoModelForCausalLM

            self.model = AutoModelForCausalLM.from_pretrained(model, torch_dtype=dtype)
        self.model.to(self.device).eval()

    # -- prompts ---------------------------------------------------------------------------------------------
    def _prompt(self, req: Request, image_tokens: int = 0) -> str:
        text = (req.source.text or "")[: self.max_text_chars]
        ask = PROMPTS[req.kind.name].format(text=text)
        if image_tokens:
            ask = _VISION.format(pads="<|image_pad|>" * image_tokens) + ask
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": ask}], tokenize=False,
                                                      add_generation_prompt=True)
        if self.vision:  # Qwen's chat markup, for folders saved without a template
            return f"<|im_start|>user\n{ask}<|im_end|>\n<|im_start|>assistant\n"
        return ask

    def _inputs(self, batch: list[Request]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        counts = [0] * len(batch)
        if self.vision:
            from PIL import Image

            images = [Image.open(r.source.image).convert("RGB") for r in batch]
            out = self.image_processor(images=images, return_tensors="pt")
            merge = self.image_processor.merge_size
            counts = (out["image_grid_thw"].prod(-1) // merge**2).tolist()
            extra = {"pixel_values": out["pixel_values"].to(self.device, self.model.dtype),
                     "image_grid_thw": out["image_grid_thw"].to(self.device)}
        enc = self.tokenizer([self._prompt(r, n) for r, n in zip(batch, counts, strict=True)], return_tensors="pt",
                             padding=True, add_special_tokens=not self.vision)
        return {**{k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}, **extra}

    # -- generation ------------------------------------------------------------------------------------------
    @staticmethod
    def clean(reply: str) -> str | None:
        """The first non-empty line, without surrounding quotes; None when nothing is left."""
        for line in reply.splitlines():
            line = line.strip().strip("\"'").strip()
            if line:
                return line[:300]
        return None

    def generate(self, requests: list[Request]) -> list[str | None]:
        out: list[str | None] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            inputs = self._inputs(batch)
            if self.do_sample:
                torch.manual_seed(batch[0].seed * 1_000_003 + start)
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                                          temperature=self.temperature if self.do_sample else None,
                                          top_p=None, top_k=None,
                                          pad_token_id=self.tokenizer.pad_token_id)
            new = ids[:, inputs["input_ids"].shape[1]:]
            out.extend(self.clean(t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out
