"""One local HTTP server speaking every AI backend protocol arkgate talks to.

Routes (under ``AiBackend.url``):
  /v1/chat/completions          OpenAI-compatible chat, plain and streamed (SSE, final usage chunk)
  /v1/images/generations        OpenAI-compatible images (b64_json)
  /libretranslate/translate     LibreTranslate
  /libretranslate/languages
  /comfyui/prompt               ComfyUI queue -> /comfyui/history/{id} -> /comfyui/view

Replies are the wire-format recordings in ``tests/fixtures/ai``. A test switches a
route's behaviour with the mode attributes (``chat_mode = "error"`` ...), holds
requests with ``hold_chat`` until ``release()``, and reads what the gateway sent
in ``requests``. Runs uvicorn in a thread on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ai"

# Modes a test may set. "ok" replays the recording.
#   chat_mode:  ok | error (HTTP 500) | malformed (200, broken JSON) | hang | no_usage
#   stream_mode: ok | error | malformed (bad chunk after `stream_cut` tokens)
#                | cut (connection dropped after `stream_cut` tokens)
#                | hold (stop after `stream_cut` tokens until release())
#   translate_mode / languages_mode / images_mode / comfy_mode: ok | error | malformed | hang
#   comfy_mode also: fail (history reports status_str "error")


@dataclass(frozen=True, kw_only=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def stream_chunks() -> list[str]:
    """The recorded SSE stream, as its ``data:`` payloads (``[DONE]`` last)."""
    return [line[len("data: ") :] for line in fixture_text("chat_stream.sse").splitlines() if line.startswith("data: ")]


def stream_tokens() -> list[str]:
    """The content pieces of the recorded stream, in order (empty ones skipped)."""
    tokens = []
    for payload in stream_chunks():
        if payload == "[DONE]":
            continue
        for choice in json.loads(payload).get("choices", []):
            content = (choice.get("delta") or {}).get("content")
            if content:
                tokens.append(content)
    return tokens


class AiBackend:
    def __init__(self) -> None:
        self.chat_mode = "ok"
        self.stream_mode = "ok"
        self.stream_cut = 5
        self.translate_mode = "ok"
        self.languages_mode = "ok"
        self.images_mode = "ok"
        self.comfy_mode = "ok"
        self.comfy_pending_polls = 2  # history answers {} this many times before the result
        self.hold_chat = False
        self.chat_reply: dict[str, Any] = fixture_json("chat_completion.json")
        self.requests: list[SeenRequest] = []
        self.chat_arrived = 0
        self.stream_disconnected = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._history_polls: dict[str, int] = {}
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> AiBackend:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self._app(), log_level="warning", lifespan="on", timeout_graceful_shutdown=2, access_log=False
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            async def serve() -> None:
                self._loop = asyncio.get_running_loop()
                self._release = asyncio.Event()
                started.set()
                assert self._server is not None
                await self._server.serve(sockets=[sock])

            asyncio.run(serve())

        self._thread = threading.Thread(target=run, name="ai-backend", daemon=True)
        self._thread.start()
        started.wait(10)
        # Ready when uvicorn says so: poll with a deadline, never a fixed sleep.
        for _ in range(1000):
            if self._server.started:
                break
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def release(self) -> None:
        """Let every held or hanging request go on."""
        if self._loop is not None and self._release is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release.set)

    # --- settings for the gateway ------------------------------------------------------
    @property
    def chat_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def libretranslate_url(self) -> str:
        return f"{self.url}/libretranslate"

    @property
    def comfyui_url(self) -> str:
        return f"{self.url}/comfyui"

    def chat_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- the app -----------------------------------------------------------------------
    async def _wait_release(self) -> None:
        assert self._release is not None
        await self._release.wait()

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            SeenRequest(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body if body is not None else dict(request.query_params),
            )
        )
        return body

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/images/generations", self._images, methods=["POST"]),
                Route("/libretranslate/translate", self._lt_translate, methods=["POST"]),
                Route("/libretranslate/languages", self._lt_languages, methods=["GET"]),
                Route("/comfyui/prompt", self._comfy_prompt, methods=["POST"]),
                Route("/comfyui/history/{prompt_id}", self._comfy_history, methods=["GET"]),
                Route("/comfyui/view", self._comfy_view, methods=["GET"]),
            ]
        )

    async def _common_failure(self, mode: str) -> Response | None:
        if mode == "error":
            return JSONResponse({"error": {"message": "model crashed", "type": "server_error"}}, status_code=500)
        if mode == "malformed":
            return Response(b'{"id": "chatcmpl-1", "choices": [', media_type="application/json")
        if mode == "hang":
            await self._wait_release()
            return JSONResponse({"error": "released"}, status_code=503)
        return None

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        self.chat_arrived += 1
        if self.hold_chat:
            await self._wait_release()
        if body.get("stream"):
            return await self._chat_stream(request)
        failure = await self._common_failure(self.chat_mode)
        if failure is not None:
            return failure
        if "You are a professional translator" in json.dumps(body.get("messages")):
            return JSONResponse(fixture_json("translate_completion.json"))
        reply = dict(self.chat_reply)
        if self.chat_mode == "no_usage":
            reply.pop("usage", None)
        return JSONResponse(reply)

    async def _chat_stream(self, request: Request) -> Response:
        mode = self.stream_mode
        if mode == "error":
            return JSONResponse({"error": {"message": "model not loaded"}}, status_code=500)
        chunks = stream_chunks()
        cut = self.stream_cut

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            try:
                for payload in chunks:
                    if payload != "[DONE]" and '"content":"' in payload and '"content":""' not in payload:
                        if sent == cut and mode in ("cut", "hold", "malformed"):
                            if mode == "malformed":
                                yield b"data: {not json\n\n"
                                return
                            if mode == "hold":
                                await self._wait_release()
                            raise ConnectionResetError("backend dropped the stream")
                        sent += 1
                    yield f"data: {payload}\n\n".encode()
            except asyncio.CancelledError:
                self.stream_disconnected += 1
                raise

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _images(self, request: Request) -> Response:
        await self._record(request)
        failure = await self._common_failure(self.images_mode)
        if failure is not None:
            return failure
        if self.images_mode == "not_image":
            return JSONResponse({"created": 1, "data": [{"b64_json": "aGVsbG8gd29ybGQ="}]})
        return JSONResponse(fixture_json("images_generation.json"))

    async def _lt_translate(self, request: Request) -> Response:
        await self._record(request)
        failure = await self._common_failure(self.translate_mode)
        if failure is not None:
            return failure
        return JSONResponse(fixture_json("libretranslate_translate.json"))

    async def _lt_languages(self, request: Request) -> Response:
        await self._record(request)
        failure = await self._common_failure(self.languages_mode)
        if failure is not None:
            return failure
        return JSONResponse(fixture_json("libretranslate_languages.json"))

    async def _comfy_prompt(self, request: Request) -> Response:
        await self._record(request)
        failure = await self._common_failure(self.comfy_mode)
        if failure is not None:
            return failure
        return JSONResponse(fixture_json("comfyui_prompt.json"))

    async def _comfy_history(self, request: Request) -> Response:
        await self._record(request)
        prompt_id = request.path_params["prompt_id"]
        polls = self._history_polls.get(prompt_id, 0)
        self._history_polls[prompt_id] = polls + 1
        if polls < self.comfy_pending_polls:
            return JSONResponse({})  # still queued or running: ComfyUI answers an empty object
        history = fixture_json("comfyui_history.json")
        if self.comfy_mode == "fail":
            entry = history[prompt_id]
            entry["outputs"] = {}
            entry["status"] = {"status_str": "error", "completed": False, "messages": []}
        return JSONResponse(history)

    async def _comfy_view(self, request: Request) -> Response:
        await self._record(request)
        if request.query_params.get("filename") != "arkgate_00003_.png":
            return PlainTextResponse("not found", status_code=404)
        return Response((FIXTURES / "image_512.png").read_bytes(), media_type="image/png")
