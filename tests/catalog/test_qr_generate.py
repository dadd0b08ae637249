"""qr-generate through the gateway: ArkAPI's fields and its size rule (64-1024 px, 0 -> 256)."""

from __future__ import annotations

import base64
import io

import pytest
import zxingcpp
from PIL import Image

from tests.upstreams.checks import assert_paid


async def test_png_has_arkapis_fields_and_decodes_to_the_data(gateway) -> None:
    token = await gateway.new_session(50)
    data = assert_paid(await gateway.call("qr-generate", {"data": "hello arkapi"}, token=token), 2)
    assert data["data"] == "hello arkapi"
    assert data["image_b64"] == data["image_base64"]
    assert data["data_uri"] == f"data:image/png;base64,{data['image_b64']}"
    assert data["size"] == data["width"] == data["height"]
    image = Image.open(io.BytesIO(base64.b64decode(data["image_b64"])))
    assert image.size == (data["size"], data["size"])
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == ["hello arkapi"]


@pytest.mark.parametrize(("size", "used"), [(300, 300), (0, 256), (-5, 256), (10, 64), (5000, 1024), (64, 64)])
async def test_size_in_pixels_is_clamped_as_arkapi_does(gateway, size: int, used: int) -> None:
    token = await gateway.new_session(50)
    data = assert_paid(await gateway.call("qr-generate", {"data": "https://example.com", "size": size}, token=token), 2)
    assert data["size"] == used
    image = Image.open(io.BytesIO(base64.b64decode(data["image_b64"])))
    assert image.size == (used, used)
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == ["https://example.com"]
