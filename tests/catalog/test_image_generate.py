"""image-generate through the gateway against a local OpenAI-images API and a ComfyUI queue/history flow."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from arkgate.catalog._ai.images import fill_workflow, load_workflow
from tests.ai_backends.fixtures import ai_overrides, calls_of, ledger_kinds, running_backend
from tests.ai_backends.server import FIXTURES, AiBackend
from tests.compat.arkapi_contract import assert_arkapi_contract

PROMPT = "cinematic AI control room"
DOWNLOAD_PREFIX = "http://gateway/v1/downloads/"


@pytest.fixture
def ai_backend() -> Iterator[AiBackend]:
    yield from running_backend()


def comfy(backend: AiBackend, **extra: Any) -> dict[str, Any]:
    return ai_overrides(backend, image_backend="comfyui", image_base_url=backend.comfyui_url, **extra)


async def fetch_download(gw: Any, url: str) -> bytes:
    assert url.startswith(DOWNLOAD_PREFIX)
    response = await gw.client.get(url.removeprefix("http://gateway"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/png")
    return response.content


async def test_openai_backend_image_is_hosted_and_charged_flat(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("image-generate", {"prompt": PROMPT, "size": "512x512"}, token=token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["cost_sats"] == 25
        data = body["data"]
        assert (data["prompt"], data["width"], data["height"], data["mime_type"]) == (PROMPT, 512, 512, "image/png")
        assert_arkapi_contract("image-generate", data)
        assert (data["seed"], data["steps"]) == (0, 0)  # the OpenAI protocol reports neither
        image = await fetch_download(gw, data["download_url"])
        assert image == (FIXTURES / "image_512.png").read_bytes()
        assert len(data["download_url"].removeprefix(DOWNLOAD_PREFIX)) == 32  # 192 random bits
        [seen] = [r for r in ai_backend.requests if r.path == "/v1/images/generations"]
        assert seen.body == {
            "model": "stable-diffusion",
            "prompt": PROMPT,
            "n": 1,
            "size": "512x512",
            "response_format": "b64_json",
        }
        assert seen.headers["authorization"] == "Bearer img-secret-key-456"
        [call] = await calls_of(gw.client, token)
        assert ledger_kinds(call) == [("debit", 25)]
        assert await gw.balance(token) == 75
        await gw.assert_ledger_consistent()


async def test_comfyui_queue_history_view_flow(gateway_factory: Callable[..., Any], ai_backend: AiBackend) -> None:
    async with gateway_factory(**comfy(ai_backend, image_steps=12, image_price_sats=30)) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("image-generate", {"prompt": PROMPT, "size": "768x768"}, token=token)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert response.json()["cost_sats"] == 30
        assert data["steps"] == 12
        assert_arkapi_contract("image-generate", data)
        queued_seed = next(r for r in ai_backend.requests if r.path == "/comfyui/prompt").body["prompt"]["3"]["inputs"]
        assert data["seed"] == queued_seed["seed"]  # ArkAPI's seed: the one the sampler used
        assert Image.open(io.BytesIO(await fetch_download(gw, data["download_url"]))).size == (512, 512)

        queued = next(r for r in ai_backend.requests if r.path == "/comfyui/prompt").body["prompt"]
        assert queued["6"]["inputs"]["text"] == PROMPT  # the positive prompt feeding the KSampler
        assert queued["5"]["inputs"] | {"width": 768, "height": 768} == queued["5"]["inputs"]
        assert queued["3"]["inputs"]["steps"] == 12
        polls = [r for r in ai_backend.requests if r.path.startswith("/comfyui/history/")]
        assert len(polls) == ai_backend.comfy_pending_polls + 1
        [view] = [r for r in ai_backend.requests if r.path == "/comfyui/view"]
        assert view.body == {"filename": "arkgate_00003_.png", "subfolder": "", "type": "output"}
        assert await gw.balance(token) == 70
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"prompt": ""}, "must not be empty"),
        ({"prompt": "   "}, "must not be empty"),
        ({}, "prompt"),
        ({"prompt": "x" * 1001}, "at most"),
        ({"prompt": PROMPT, "size": "4096x4096"}, "size"),
    ],
)
async def test_rejected_input_costs_nothing(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, payload: dict[str, Any], message: str
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("image-generate", payload, token=token)
        assert response.status_code == 400, response.text
        assert response.json()["cost_sats"] == 0
        assert message in response.json()["error"]
        assert await gw.balance(token) == 100
        assert ai_backend.requests == []


@pytest.mark.parametrize(
    ("backend_kind", "mode", "status"),
    [
        ("openai", "error", 502),
        ("openai", "malformed", 502),
        ("openai", "not_image", 502),
        ("openai", "hang", 504),
        ("comfyui", "error", 502),
        ("comfyui", "malformed", 502),
        ("comfyui", "fail", 502),
        ("comfyui", "hang", 504),
    ],
)
async def test_backend_failure_refunds_everything(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, backend_kind: str, mode: str, status: int
) -> None:
    if backend_kind == "comfyui":
        ai_backend.comfy_mode = mode
        overrides = comfy(ai_backend, image_timeout_s=0.5)
    else:
        ai_backend.images_mode = mode
        overrides = ai_overrides(ai_backend, image_timeout_s=0.5)
    async with gateway_factory(**overrides) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("image-generate", {"prompt": PROMPT}, token=token)
        assert response.status_code == status, response.text
        assert response.json()["cost_sats"] == 0
        assert "image backend" in response.json()["error"]
        assert "img-secret" not in response.text and ai_backend.url not in response.text
        assert await gw.balance(token) == 100
        [call] = await calls_of(gw.client, token)
        assert ledger_kinds(call) == [("debit", 25), ("refund", 25)]
        await gw.assert_ledger_consistent()


def test_fill_workflow_sets_prompt_size_steps_and_a_fresh_seed() -> None:
    from arkgate.settings import Settings

    template = load_workflow(Settings(image_comfyui_checkpoint="sdxl.safetensors"))
    assert template["4"]["inputs"]["ckpt_name"] == "sdxl.safetensors"
    first = fill_workflow(template, prompt="a cat", width=256, height=256, steps=5)
    assert first["6"]["inputs"]["text"] == "a cat"
    assert first["7"]["inputs"]["text"] == template["7"]["inputs"]["text"]  # negative prompt untouched
    assert (first["5"]["inputs"]["width"], first["3"]["inputs"]["steps"]) == (256, 5)
    assert template["6"]["inputs"]["text"] == ""  # the template itself is not modified
    seeds = {fill_workflow(template, prompt="a", width=8, height=8, steps=1)["3"]["inputs"]["seed"] for _ in range(8)}
    assert len(seeds) > 1  # a fresh random seed per call (8 equal draws: odds 2**-224)
