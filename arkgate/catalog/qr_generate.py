"""qr-generate: encode text as a QR code, returned as a base64 PNG or SVG.

Encoding uses zxing-cpp's compiled writer: pure-Python encoders cost a few
milliseconds per code, which would dominate a 2-sat call.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import TYPE_CHECKING, Literal, cast

import zxingcpp
from PIL import Image
from pydantic import BaseModel, Field, computed_field, field_validator

from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Buffer

MAX_DATA_CHARS = 2048


class QrRequest(BaseModel):
    data: str = Field(
        ...,
        min_length=1,
        max_length=MAX_DATA_CHARS,
        description="Text or URL to encode.",
        examples=["https://example.com"],
    )
    format: Literal["png", "svg"] = Field("png", description="Image format.")
    scale: int = Field(8, ge=1, le=32, description="Pixels per QR module.")
    border: int = Field(4, ge=0, le=16, description="Quiet zone, in modules.")
    download: bool = Field(False, description="Also host the image at a short-lived download URL.")
    size: int | None = Field(
        None,
        description="Image side in pixels, as in ArkAPI: clamped to 64-1024 (0 or less: 256). "
        "Given, it replaces scale.",
        examples=[256],
    )

    @field_validator("data")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("data must not be blank")
        return value


class QrResponse(BaseModel):
    format: Literal["png", "svg"]
    mime_type: str
    image_base64: str = Field(..., description="The image, base64-encoded.")
    data_uri: str = Field(..., description="The image as a data: URI, ready for an <img> tag.")
    width: int = Field(..., description="Image width in pixels.")
    height: int = Field(..., description="Image height in pixels.")
    modules: int = Field(..., description="QR symbol size in modules, without the quiet zone.")
    data_length: int
    download_url: str | None = Field(default=None, description="Where to fetch the image (when download was asked).")
    download_expires_at: datetime | None = None
    data: str = Field(..., description="ArkAPI's: the encoded text, echoed back.")

    @computed_field(description="ArkAPI's: the image side in pixels.")  # type: ignore[prop-decorator]
    @property
    def size(self) -> int:
        return self.width

    @computed_field(description="ArkAPI's name for image_base64.")  # type: ignore[prop-decorator]
    @property
    def image_b64(self) -> str:
        return self.image_base64


QR_DEFAULT_SIZE, QR_MIN_SIZE, QR_MAX_SIZE = 256, 64, 1024  # ArkAPI's pixel bounds


def clamp_size(size: int) -> int:
    """ArkAPI's rule: 0 or less means the default, then clamp to 64-1024 pixels."""
    if size <= 0:
        return QR_DEFAULT_SIZE
    return max(QR_MIN_SIZE, min(QR_MAX_SIZE, size))


def render_qr(data: str, *, fmt: str = "png", scale: int = 8, border: int = 4, size: int | None = None) -> QrResponse:
    """Encode ``data``; the work is synchronous and sub-millisecond, so it runs inline."""
    try:
        symbol = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode)
    except Exception as exc:  # zxing raises plain errors for data that does not fit
        raise InputError(f"data cannot be encoded as a QR code: {exc}") from exc
    image_1px = symbol.to_image(scale=1, add_quiet_zones=False)
    # zxing-cpp's stub leaves out the buffer protocol its Image implements.
    raw = memoryview(cast("Buffer", image_1px))
    modules = int(image_1px.shape[0])
    side = (modules + 2 * border) * scale if size is None else size
    if fmt == "svg":
        svg = _svg(raw, modules, border, side)
        encoded = base64.b64encode(svg.encode()).decode()
        mime = "image/svg+xml"
    else:
        image = Image.frombuffer("L", (modules, modules), raw.tobytes(), "raw", "L", 0, 1).convert("1")
        canvas = Image.new("1", (modules + 2 * border, modules + 2 * border), 1)
        canvas.paste(image, (border, border))
        if side != modules + 2 * border:
            canvas = canvas.resize((side, side), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG", compress_level=1)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        mime = "image/png"
    return QrResponse(
        format="svg" if fmt == "svg" else "png",
        mime_type=mime,
        image_base64=encoded,
        data_uri=f"data:{mime};base64,{encoded}",
        width=side,
        height=side,
        modules=modules,
        data_length=len(data),
        data=data,
    )


def _svg(raw: memoryview, modules: int, border: int, side: int) -> str:
    """A compact SVG: one path with a unit square per dark module."""
    pixels = raw.tobytes()
    parts = [
        f"M{x + border} {y + border}h1v1h-1z"
        for y in range(modules)
        for x in range(modules)
        if pixels[y * modules + x] < 128
    ]
    size = modules + 2 * border
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(parts)}"/></svg>'
    )


async def generate(request: QrRequest, ctx: CallContext) -> QrResponse:
    size = None if request.size is None else clamp_size(request.size)
    result = render_qr(request.data, fmt=request.format, scale=request.scale, border=request.border, size=size)
    if request.download:
        from arkgate.downloads import get_download_store

        stored = await ctx.services.get(get_download_store).save(
            base64.b64decode(result.image_base64), result.mime_type
        )
        result.download_url = ctx.base_url + stored.url_path
        result.download_expires_at = stored.expires_at
    return result


ENDPOINT = Endpoint(
    id="qr-generate",
    price_sats=2,
    category="utility",
    summary="Generate a QR code",
    description="Encodes text or a URL as a QR code and returns it as a base64 PNG or SVG image.",
    request_model=QrRequest,
    response_model=QrResponse,
    handler=generate,
    example={"data": "https://example.com"},
)
