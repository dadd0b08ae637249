from __future__ import annotations


async def test_free_session_can_call_qr_generate(gateway):
    token = await gateway.new_session(10)
    response = await gateway.call("qr-generate", {"data": "hello"}, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["cost_sats"] == 2
    assert body["balance_remaining"] == 8
    assert await gateway.balance(token) == 8
    await gateway.assert_ledger_consistent()


async def test_qr_generate_svg_and_hosted_png(gateway):
    import base64
    import io

    import zxingcpp
    from PIL import Image

    token = await gateway.new_session(10)
    svg = (await gateway.call("qr-generate", {"data": "svg please", "format": "svg"}, token=token)).json()["data"]
    assert svg["mime_type"] == "image/svg+xml" and base64.b64decode(svg["image_base64"]).startswith(b"<svg")
    body = (await gateway.call("qr-generate", {"data": "hosted", "download": True}, token=token)).json()["data"]
    path = body["download_url"].removeprefix("http://gateway")
    hosted = await gateway.client.get(path)
    assert hosted.status_code == 200 and hosted.headers["content-type"] == "image/png"
    assert zxingcpp.read_barcodes(Image.open(io.BytesIO(hosted.content)))[0].text == "hosted"
    assert (await gateway.call("qr-generate", {"data": ""}, token=token)).status_code == 400
    assert (await gateway.call("qr-generate", {"data": "x", "scale": 99}, token=token)).status_code == 400
    assert await gateway.balance(token) == 6
