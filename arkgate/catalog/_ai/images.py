"""Image backends: an OpenAI-images-compatible API, or ComfyUI's queue/history flow.

Both return raw image bytes; the endpoint stores them in the hosted-downloads
store. Failures map onto arkgate's errors (502, 504 on timeout) so the meter
refunds, with messages that name the backend kind but never its URL or key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import io
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image, UnidentifiedImageError

from arkgate.errors import UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from arkgate.settings import Settings

NAME = "the image backend"
BUNDLED_WORKFLOW = Path(__file__).with_name("comfyui_workflow.json")
MAX_IMAGE_BYTES = 20_000_000


@dataclass(frozen=True, kw_only=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    steps: int | None
    seed: int | None = None  # None: the backend chose one and did not say


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """Media type and size of the backend's bytes; anything Pillow cannot read is malformed."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = (image.format or "").upper()
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UpstreamError(f"{NAME} sent data that is not an image") from exc
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}.get(fmt)
    if mime is None:
        raise UpstreamError(f"{NAME} sent an unsupported image format")
    return mime, width, height


def _headers(settings: Settings) -> dict[str, str]:
    key = settings.image_api_key
    return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}


def _base(settings: Settings) -> str:
    if not settings.image_base_url:
        raise UpstreamError(f"{NAME} is not configured on this gateway")
    return settings.image_base_url.rstrip("/")


async def _send(http: httpx.AsyncClient, method: str, url: str, settings: Settings, **kwargs: Any) -> httpx.Response:
    try:
        response = await http.request(method, url, headers=_headers(settings), **kwargs)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{NAME} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{NAME} is unreachable") from exc
    if response.status_code != 200:
        raise UpstreamError(f"{NAME} failed (HTTP {response.status_code})")
    if len(response.content) > MAX_IMAGE_BYTES:
        raise UpstreamError(f"{NAME} sent an oversized response")
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UpstreamError(f"{NAME} sent a malformed response") from exc


async def generate(
    http: httpx.AsyncClient, settings: Settings, *, prompt: str, width: int, height: int
) -> GeneratedImage:
    """Generate one image within ``image_timeout_s``."""
    try:
        async with asyncio.timeout(settings.image_timeout_s):
            if settings.image_backend == "comfyui":
                return await _comfyui(http, settings, prompt=prompt, width=width, height=height)
            return await _openai(http, settings, prompt=prompt, width=width, height=height)
    except TimeoutError as exc:
        raise UpstreamTimeoutError(f"{NAME} did not finish the image in time") from exc


# --- OpenAI-compatible: POST /images/generations ------------------------------------------


async def _openai(
    http: httpx.AsyncClient, settings: Settings, *, prompt: str, width: int, height: int
) -> GeneratedImage:
    payload = {
        "model": settings.image_model,
        "prompt": prompt,
        "n": 1,
        "size": f"{width}x{height}",
        "response_format": "b64_json",
    }
    response = await _send(
        http,
        "POST",
        f"{_base(settings)}/images/generations",
        settings,
        json=payload,
        timeout=settings.image_timeout_s,
    )
    body = _json(response)
    try:
        encoded = body["data"][0]["b64_json"]
        data = base64.b64decode(encoded, validate=True)
    except (KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise UpstreamError(f"{NAME} sent a malformed response") from exc
    mime, real_width, real_height = inspect_image(data)
    return GeneratedImage(data=data, mime_type=mime, width=real_width, height=real_height, steps=None)


# --- ComfyUI: POST /prompt, poll GET /history/{id}, GET /view -----------------------------


def load_workflow(settings: Settings) -> dict[str, Any]:
    path = settings.image_comfyui_workflow or BUNDLED_WORKFLOW
    workflow = json.loads(path.read_text())
    if settings.image_comfyui_workflow is None:
        for node in workflow.values():
            if node.get("class_type") == "CheckpointLoaderSimple":
                node["inputs"]["ckpt_name"] = settings.image_comfyui_checkpoint
    return workflow  # type: ignore[no-any-return]


def fill_workflow(
    template: dict[str, Any], *, prompt: str, width: int, height: int, steps: int, seed: int | None = None
) -> dict[str, Any]:
    """Put this call's prompt, size, steps and seed (fresh and random unless given) into an API-format workflow."""
    workflow = copy.deepcopy(template)
    if seed is None:
        seed = secrets.randbelow(2**32)
    samplers = [node for node in workflow.values() if "KSampler" in str(node.get("class_type", ""))]
    if not samplers:
        raise UpstreamError("the ComfyUI workflow has no KSampler node")
    for sampler in samplers:
        inputs = sampler["inputs"]
        if "seed" in inputs:
            inputs["seed"] = seed
        if "noise_seed" in inputs:
            inputs["noise_seed"] = seed
        inputs["steps"] = steps
        positive = inputs.get("positive")
        if isinstance(positive, list) and str(positive[0]) in workflow:
            workflow[str(positive[0])]["inputs"]["text"] = prompt
    for node in workflow.values():
        if node.get("class_type") == "EmptyLatentImage":
            node["inputs"]["width"] = width
            node["inputs"]["height"] = height
    return workflow


async def _comfyui(
    http: httpx.AsyncClient, settings: Settings, *, prompt: str, width: int, height: int
) -> GeneratedImage:
    base = _base(settings)
    seed = secrets.randbelow(2**32)
    workflow = fill_workflow(
        load_workflow(settings), prompt=prompt, width=width, height=height, steps=settings.image_steps, seed=seed
    )
    queued = _json(
        await _send(http, "POST", f"{base}/prompt", settings, json={"prompt": workflow, "client_id": uuid.uuid4().hex})
    )
    prompt_id = queued.get("prompt_id") if isinstance(queued, dict) else None
    if not isinstance(prompt_id, str) or not prompt_id:
        raise UpstreamError(f"{NAME} did not queue the job")
    image_ref = await _wait_for_output(http, settings, base, prompt_id)
    response = await _send(http, "GET", f"{base}/view", settings, params=image_ref)
    data = response.content
    mime, real_width, real_height = inspect_image(data)
    return GeneratedImage(
        data=data, mime_type=mime, width=real_width, height=real_height, steps=settings.image_steps, seed=seed
    )


async def _wait_for_output(http: httpx.AsyncClient, settings: Settings, base: str, prompt_id: str) -> dict[str, str]:
    """Poll the job's history until it has an image (the caller's timeout bounds the wait)."""
    while True:
        history = _json(await _send(http, "GET", f"{base}/history/{prompt_id}", settings))
        entry = history.get(prompt_id) if isinstance(history, dict) else None
        if isinstance(entry, dict):
            status = entry.get("status") or {}
            if status.get("status_str") == "error":
                raise UpstreamError(f"{NAME} failed to generate the image")
            for output in (entry.get("outputs") or {}).values():
                for image in (output or {}).get("images") or []:
                    if isinstance(image, dict) and isinstance(image.get("filename"), str):
                        return {
                            "filename": image["filename"],
                            "subfolder": str(image.get("subfolder") or ""),
                            "type": str(image.get("type") or "output"),
                        }
            if status.get("completed"):
                raise UpstreamError(f"{NAME} finished without an image")
        await asyncio.sleep(settings.image_poll_interval_s)
