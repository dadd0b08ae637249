"""The plugin hooks arkgate declares: the names and signatures a third-party package may implement.

A plugin is any module (or object) with functions marked ``@hookimpl`` whose names and parameters
match a spec below; pluggy checks them when the plugin is registered, so a typo fails at start-up
instead of being silently ignored. Installed packages are found through the ``arkgate`` entry-point
group (``arkgate.plugins.plugin_manager``); docs/extending.md shows a complete package.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from arkgate.catalog.registry import Endpoint

PROJECT = "arkgate"  # the pluggy project name and the entry-point group plugins register under

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_endpoints() -> Iterable[Endpoint]:  # type: ignore[empty-body]
    """Paid endpoints this plugin serves, declared exactly like the built-in ones.

    Each is routed at ``/api/<id>``, charged through the meter at its ``price_sats`` (or ``metered``
    pricing) and listed with its price in OpenAPI (``x-cost-sats``), ``/v1/catalog``, the manifests,
    llms.txt and MCP. An id that is already taken stops the gateway at start-up.
    """
