"""The service layer: what ``api/``, ``web/``, ``admin/`` and MCP share, below every router.

Each module is one idea with typed inputs: ``sessions`` (open, fund, top up), ``auth`` (who a
token names), ``envelope`` (ArkAPI's response shape and error rendering), ``l402`` (macaroons),
``metrics``, ``ratelimit`` and ``tasks``. Nothing here imports a router or the runtime.
"""
