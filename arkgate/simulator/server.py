"""Run the simulator in a background thread for tests: ``with SimulatorServer(tmp) as sim: ...``."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from arkgate.simulator.app import SimulatorApp, create_simulator_app

_START_TIMEOUT_S = 10.0


class SimulatorServer:
    """A real uvicorn server on 127.0.0.1 (port 0 = any free port), with control helpers."""

    def __init__(self, state_dir: Path, *, port: int = 0, **app_options: Any) -> None:
        self.state_dir = Path(state_dir)
        self.port = port
        self.app_options = app_options
        self.app: SimulatorApp | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=10.0)

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        assert self.app is not None, "server not started"
        return self.app.token

    def start(self) -> None:
        self.app = create_simulator_app(self.state_dir, **self.app_options)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Reuse the port on restart() even while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, ws="websockets-sansio"
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.started:
                try:
                    if self._client.get(f"{self.url}/ping").text == "pong":
                        return
                except httpx.TransportError:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.01)
        raise RuntimeError("simulator did not start")

    def stop(self) -> None:
        if self._server is not None:
            if self.app is not None:
                self.app.shutdown()
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self.app is not None:
            self.app.store.close()

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the SQLite state and token."""
        self.stop()
        self.start()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._client.close()

    # -- controls ------------------------------------------------------------------------------------
    def _control(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._client.post(f"{self.url}/_sim/{name}", json=body or {})
        result: dict[str, Any] = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"simulator control {name} failed: {result}")
        return result

    def pay_invoice(self, bolt11: str) -> dict[str, Any]:
        return self._control("pay-invoice", {"invoice": bolt11})

    def send_ark(self, address: str, amount_sat: int, vtxos: int = 1, **extra: Any) -> dict[str, Any]:
        return self._control("send-ark", {"address": address, "amount_sat": amount_sat, "vtxos": vtxos, **extra})

    def payee_invoice(self, amount_sat: int | None) -> dict[str, Any]:
        """An outside node's BOLT11 invoice: ``{invoice, payment_hash, amount_sat}``."""
        return self._control("payee/invoice", {"amount_sat": amount_sat})

    def payee_offer(self, amount_sat: int | None = None) -> str:
        """An outside node's BOLT12 offer."""
        return str(self._control("payee/offer", {"amount_sat": amount_sat})["offer"])

    def payee_address(self) -> str:
        """An outside wallet's Ark address."""
        return str(self._control("payee/address")["address"])

    def payee_received(self, destination: str) -> dict[str, Any]:
        """``{destination, received_sat, payments}`` for an outside destination."""
        return self._control("payee/received", {"destination": destination})

    def mine(self, blocks: int = 1) -> dict[str, Any]:
        return self._control("mine", {"blocks": blocks})

    def recover(self, gap_limit: int | None = None) -> dict[str, Any]:
        """What a seed recovery scanning up to ``gap_limit`` unused keys would find."""
        return self._control("recover", {} if gap_limit is None else {"gap_limit": gap_limit})

    def run_round(self) -> dict[str, Any]:
        return self._control("round")

    def set_online(self, online: bool) -> dict[str, Any]:
        return self._control("server", {"online": online})

    def faults(self, **kw: Any) -> dict[str, Any]:
        return self._control("faults", kw)

    def advance_time(self, seconds: float) -> dict[str, Any]:
        return self._control("advance-time", {"seconds": seconds})

    def fund_onchain(self, amount_sat: int) -> dict[str, Any]:
        return self._control("fund-onchain", {"amount_sat": amount_sat})

    def requests(self) -> dict[str, int]:
        """barkd API requests served since the last reset, per ``METHOD path[?params]``."""
        result: dict[str, int] = self._client.get(f"{self.url}/_sim/requests").json()["counts"]
        return result

    def reset_requests(self) -> None:
        self._control("requests/reset")

    def drop_websockets(self) -> int:
        return int(self._control("drop-websockets")["dropped"])

    def seed_history(self, count: int) -> dict[str, Any]:
        return self._control("seed-history", {"count": count})

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._client.get(f"{self.url}/_sim/state").json()
        return result

    def headers(self) -> dict[str, str]:
        """The bearer header a barkd client would send."""
        return {"Authorization": f"Bearer {self.token}"}
