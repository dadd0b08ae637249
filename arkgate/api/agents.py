"""Agents first: everything an agent reads or speaks is generated from the catalog registry.

``install(app, rt)`` (called by ``create_app``) mounts these and returns, as its ``Part``, the
challenge and resolver below and the MCP session manager's lifespan:
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
from arkgate.api.l402 import l402_token_hash
from arkgate.runtime import LifespanContext, Part, Runtime, StartupHook
from arkgate.services.l402 import L402


def install(app: FastAPI, rt: Runtime) -> Part:
    startup_hooks: list[StartupHook] = []
    if rt.l402 is not None:

        async def load_l402_key(rt: Runtime) -> None:
            # After migrations: the key lives in the database, shared by every instance.
            rt.l402 = await L402.shared(rt.settings, rt.database)

        startup_hooks.append(load_l402_key)
    openapi.install(app, rt)
    app.include_router(manifests.router)
    app.include_router(llms.router)
    lifespan_contexts: tuple[LifespanContext, ...] = ()
    if rt.settings.mcp_enabled:
        from arkgate.api import mcp_server

        lifespan_contexts = (mcp_server.install(app, rt),)
    return Part(
        challenge=payment_challenge,
        # After the bearer resolver create_app puts first: it is the cheap, common case.
        token_resolvers=(l402_token_hash,),
        startup_hooks=tuple(startup_hooks),
        lifespan_contexts=lifespan_contexts,
    )
