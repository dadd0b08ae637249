"""Agents first: everything an agent reads or speaks is generated from the catalog registry.

``install(app, rt)`` (called by ``create_app``) wires:
- ``GET /openapi.json``: OpenAPI 3.1 built at request time (``arkgate.api.openapi``);
- ``GET /.well-known/arkapi.json`` and ``/.well-known/arkgate.json`` manifests, ``GET /v1/quote``
  (``arkgate.api.manifests``); ``GET /llms.txt`` and ``/llms-full.txt`` (``arkgate.api.llms``);
- the MCP server at ``/mcp`` (``arkgate.api.mcp_server``);
- the payable 402 challenge and the L402 token resolver (``arkgate.api.challenge``, ``arkgate.api.l402``).
"""

from __future__ import annotations

from fastapi import FastAPI

from arkgate.api import llms, manifests, openapi
from arkgate.api.challenge import payment_challenge
from arkgate.api.l402 import L402, l402_token_hash
from arkgate.api.metering import bearer_token_hash
from arkgate.api.runtime import Runtime


def install(app: FastAPI, rt: Runtime) -> None:
    rt.extras["challenge"] = payment_challenge
    if rt.settings.l402_enabled:
        rt.extras["l402"] = L402(rt.settings)

        async def load_l402_key(rt: Runtime) -> None:
            # After migrations: the key lives in the database, shared by every instance.
            rt.extras["l402"] = await L402.shared(rt.settings, rt.database)

        rt.extras.setdefault("startup_hooks", []).append(load_l402_key)
    # The bearer resolver stays first: it is the cheap, common case.
    resolvers = list(rt.extras.get("token_resolvers", (bearer_token_hash,)))
    if l402_token_hash not in resolvers:
        resolvers.append(l402_token_hash)
    rt.extras["token_resolvers"] = tuple(resolvers)

    openapi.install(app, rt)
    app.include_router(manifests.router)
    app.include_router(llms.router)
    if rt.settings.mcp_enabled:
        from arkgate.api import mcp_server

        mcp_server.install(app, rt)
