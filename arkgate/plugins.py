"""Plugin discovery: a pluggy manager over ``arkgate.hookspecs``, loading the ``arkgate`` entry points."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from arkgate import hookspecs
from arkgate.catalog.registry import Endpoint, StartupError


def plugin_manager(*, plugins: Iterable[object] = (), entry_points: bool = True) -> pluggy.PluginManager:
    """A manager with every hook spec, the given plugin objects and (by default) the installed plugins."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for plugin in plugins:
        manager.register(plugin)
    if entry_points:
        manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    manager.check_pending()  # a misspelt hook name fails here, at start-up, instead of being ignored
    return manager


def plugin_endpoints(manager: pluggy.PluginManager) -> list[Endpoint]:
    """Every endpoint the registered plugins declare, in registration order."""
    found: list[Endpoint] = []
    for batch in reversed(manager.hook.register_endpoints()):  # pluggy answers last-registered first
        for endpoint in batch:
            if not isinstance(endpoint, Endpoint):
                raise StartupError(f"a plugin's register_endpoints returned {endpoint!r}, not an Endpoint")
            found.append(endpoint)
    return found
