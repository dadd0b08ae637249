"""image-generate: one image from a text prompt, hosted as a short-lived download.

The operator picks the backend (an OpenAI-images-compatible API or ComfyUI);
the image is stored in the hosted-downloads store and served at an unguessable,
expiring ``/v1/downloads/{id}`` URL. Flat price per image.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_serializer, field_validator

from arkgate.catalog._ai.images import generate
from arkgate.catalog._ai.pricing import plural_sats
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint, Metered, needs_setting
from arkgate.downloads import get_download_store
from arkgate.settings import Settings

MAX_PROMPT_CHARS = 1000
Size = Literal["256x256", "512x512", "768x768", "1024x1024"]


class ImageGenerateRequest(BaseModel):
    prompt: str = Field(
        ...,
        max_length=MAX_PROMPT_CHARS,
        description=f"What to draw (at most {MAX_PROMPT_CHARS} characters).",
        examples=["cinematic AI control room"],
    )
    size: Size = Field("512x512", description="Image size in pixels, width x height.")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be empty")
        return value.strip()


class ImageGenerateResponse(BaseModel):
    prompt: str
    width: int
    height: int
    steps: int | None = Field(None, description="Sampler steps, when the backend reports them.")
    mime_type: str
    size_bytes: int
    download_url: str = Field(..., description="Where the image can be fetched until expires_at.")
    expires_at: datetime
    seed: int = Field(0, description="ArkAPI's: the sampler seed (ComfyUI); 0 when the backend does not report one.")

    @field_serializer("steps")
    def _steps_number(self, value: int | None) -> int:
        return value or 0  # ArkAPI's steps is always a number


def image_price_sats(settings: Settings) -> int:
    return settings.image_price_sats


def reserve_sats(request: ImageGenerateRequest, settings: Settings) -> int:
    return settings.image_price_sats


def rate_text(settings: Settings) -> str:
    return f"{plural_sats(settings.image_price_sats)} per image; a failed generation is refunded in full."


async def generate_image(request: ImageGenerateRequest, ctx: CallContext) -> ImageGenerateResponse:
    width, height = (int(part) for part in request.size.split("x"))
    image = await generate(ctx.services.http, ctx.settings, prompt=request.prompt, width=width, height=height)
    store = ctx.services.get(get_download_store)
    download = await store.save(image.data, image.mime_type)
    ctx.settle(ctx.settings.image_price_sats)
    base = (ctx.settings.public_url or ctx.base_url).rstrip("/")
    return ImageGenerateResponse(
        prompt=request.prompt,
        width=image.width,
        height=image.height,
        steps=image.steps,
        mime_type=image.mime_type,
        size_bytes=download.size_bytes,
        download_url=f"{base}{download.url_path}",
        expires_at=download.expires_at,
        seed=image.seed or 0,
    )


ENDPOINT = Endpoint(
    id="image-generate",
    price_sats=1,
    category="visual",
    summary="Generate an AI image",
    description=(
        "Generates one image from a text prompt on the operator's image model and returns a "
        "short-lived download URL for it."
    ),
    request_model=ImageGenerateRequest,
    response_model=ImageGenerateResponse,
    handler=generate_image,
    requires=(needs_setting("image_base_url", "image generation backend"),),
    metered=Metered(
        reserve_sats=reserve_sats,
        rate=rate_text,
        max_cost_sats=image_price_sats,
        min_cost_sats=image_price_sats,
    ),
    example={"prompt": "cinematic AI control room"},
    tags=("ai",),
)
