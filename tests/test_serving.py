"""A real ``arkgate serve`` under hostile load: huge bodies and headers, slow headers."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.served import ServedGateway, served_gateway

MB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)  # sent again and again: the client never holds the whole body


def _chunks(total: int, *, chunked: bool) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = CHUNK[: min(len(CHUNK), total - sent)]
        sent += len(piece)
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def _send_until_answered(gw: ServedGateway, head: bytes, body: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then ``body`` until the server answers or hangs up; return (answer, body bytes sent)."""
    sent = 0
    answer = b""
    with socket.create_connection((gw.host, gw.port), timeout=30) as sock:
        sock.sendall(head)
        for piece in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:  # the server answered and closed while we were sending
                break
            sent += len(piece)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer, sent


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _body(answer: bytes) -> dict[str, object]:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def _reset_peak_rss(gw: ServedGateway) -> None:
    # Writing 5 to clear_refs resets VmHWM (the peak resident size) to the current size.
    Path(f"/proc/{gw.pid}/clear_refs").write_text("5")


def test_huge_bodies_and_header_are_refused_early_without_memory_growth(tmp_path: Path) -> None:
    with served_gateway(tmp_path) as gw:
        # Warm up: the first session and call load what a request needs.
        for _ in range(3):
            assert httpx.post(f"{gw.url}/v1/sessions", json={"amount_sats": 500}).status_code == 201
        _reset_peak_rss(gw)
        before_kb = gw.status_kb("VmRSS")
        total = 300 * MB
        heads = [
            b"POST /v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % total,
            b"POST /v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            b"POST /api/qr-generate HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
        ]
        results: list[tuple[bytes, int]] = [(b"", 0)] * 4

        def attack(index: int) -> None:
            if index < 3:
                chunked = b"chunked" in heads[index]
                results[index] = _send_until_answered(gw, heads[index], _chunks(total, chunked=chunked))
            else:
                header = b"GET /health HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "
                results[index] = _send_until_answered(gw, header, (CHUNK for _ in range(50 * MB // len(CHUNK))))

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        peak_kb = gw.status_kb("VmHWM")
        growth_mb = (peak_kb - before_kb) / 1024
        print(f"\nRSS before {before_kb / 1024:.1f} MB, peak during the attack {peak_kb / 1024:.1f} MB")
        for answer, sent in results[:3]:
            assert _status(answer) == 413, answer[:300]
            assert _body(answer)["success"] is False
            assert _body(answer)["error_code"] == "request_too_large"
            assert sent < 10 * MB, f"the server kept reading: {sent} bytes sent"
        header_answer, header_sent = results[3]
        assert _status(header_answer) == 431, header_answer[:300]
        assert _body(header_answer)["error_code"] == "request_headers_too_large"
        assert header_sent < 10 * MB
        assert growth_mb < 50, f"the server grew by {growth_mb:.1f} MB"
        # And it still serves.
        assert httpx.post(f"{gw.url}/v1/sessions", json={"amount_sats": 500}).status_code == 201


def test_a_client_slow_to_send_headers_is_disconnected(tmp_path: Path) -> None:
    with served_gateway(tmp_path, header_timeout_s=1.0, keep_alive_timeout_s=1) as gw:
        with socket.create_connection((gw.host, gw.port), timeout=30) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n")  # never finishes its headers
            # recv returns b"" when the server hangs up; the socket timeout only bounds the test.
            assert sock.recv(1024) == b""
        # A kept-alive connection idle after its answer is closed too.
        with socket.create_connection((gw.host, gw.port), timeout=30) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            assert _status(answer) in (200, 503)
            while sock.recv(65536):
                pass  # rest of the body, then the hang-up


def test_a_large_body_is_accepted_where_a_route_declares_it(tmp_path: Path) -> None:
    with served_gateway(tmp_path) as gw:
        padding = "x" * 100_000
        small = httpx.post(f"{gw.url}/v1/sessions", json={"amount_sats": 500, "padding": padding})
        assert small.status_code == 413
        assert small.json()["success"] is False
        # ai-chat takes long conversations: the body limit lets it through to validation (400, not 413).
        large = httpx.post(f"{gw.url}/api/ai-chat", json={"prompt": "hi", "padding": padding})
        assert large.status_code != 413, large.text


def test_a_client_slow_to_send_its_body_is_disconnected(tmp_path: Path) -> None:
    with served_gateway(tmp_path, body_timeout_s=1.0) as gw:
        with socket.create_connection((gw.host, gw.port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"amount_sats"'  # 15 of the 100 bytes promised, then nothing
            )
            answer = b""
            while chunk := sock.recv(65536):  # the server hangs up; the socket timeout only bounds the test
                answer += chunk
            assert b" 201 " not in answer
        # A body that arrives in time is served.
        assert httpx.post(f"{gw.url}/v1/sessions", json={"amount_sats": 500}).status_code == 201
