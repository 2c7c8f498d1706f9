"""Bodies of the OpenAI-compatible routes (/v1/embeddings, /v1/models), as OpenAI's clients send and read them.

Multimodal input takes the form vLLM accepts on its embeddings route: chat-style `messages` whose content is
text and `image_url` parts (`{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`); the
same part lists may also stand as elements of `input`, to embed several multimodal items in one request.
`role` and `instruction` are umr's extra fields (the `openai` client sends them through `extra_body`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageURL(_Strict):
    url: str = Field(..., description="a data: URL (data:image/png;base64,...); http(s) only where the server "
                     "allows image URLs")
    detail: str | None = Field(None, description="accepted for compatibility; ignored")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Strict):
    role: Literal["system", "user"] = Field(..., description="system: the instruction; user: the item")
    content: str | list[ContentPart]


class EmbeddingRequest(_Strict):
    model: str | None = Field(None, description="the served model's id (GET /v1/models); others are refused")
    input: str | list[Any] | None = Field(
        None, description="a string, a list of strings, or a list whose elements are strings or lists of content "
        "parts (text / image_url); token-id arrays are not accepted")
    messages: list[Message] | None = Field(
        None, description="one multimodal item as vLLM takes it: user content parts (text, image_url); a system "
        "message's text is the instruction. Give either input or messages")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: each vector's little-endian float32 bytes, base64-encoded")
    dimensions: int | None = Field(None, description="must equal the model's dimension when given (no truncation)")
    user: str | None = Field(None, description="accepted for compatibility; ignored")
    role: Literal["query", "document", "candidate"] | None = Field(
        None, description="umr extra: 'query' embeds with the instruction (as /search does), 'document' plainly "
        "(as `umr embed` and `umr index build` do). Default: query when an instruction is given, else document")
    instruction: str | None = Field(None, description='umr extra: the task instruction for queries, e.g. '
                                    '"Retrieve an image that matches the given caption."')


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(..., description="the L2-normalised vector, or its base64 float32 bytes")


class Usage(BaseModel):
    prompt_tokens: int = Field(..., description="tokens of the inputs' texts and instructions (images not counted)")
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "umr"
    dim: int = Field(..., description="umr extra: the embedding dimension")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """Every error on /v1/*: OpenAI's shape, which its clients turn into their exceptions."""

    error: OpenAIError
