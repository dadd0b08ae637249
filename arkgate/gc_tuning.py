"""Garbage collection tuned for serving: the start-up heap frozen, young collections rarer.

After start-up the process holds a large, long-lived heap (the app, the catalog's models,
SQLAlchemy's compiled statements, pydantic validators). CPython's generation-2 collection
walks all of it, and with the default thresholds (700, 10, 10) one ran every few thousand
requests for ~100 ms: that pause was the p99 of every benchmark, ten times the handler's
own latency. ``gc.freeze()`` moves the start-up heap to a permanent generation that no
collection walks, so a full collection only sees what serving allocated since.

A request allocates a few hundred container objects that almost all die young by reference
counting; a larger generation-0 threshold collects them less often for the same total work,
and a larger generation-1 threshold promotes fewer of them into the old generation.
Reference cycles are still collected: only later and in larger batches.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

# Generation 0 every 10,000 net container allocations (about 20 requests), generation 1
# every 20 of those, generation 2 every 10 of those (and only once the pending long-lived
# objects exceed a quarter of the old generation, CPython's own rule).
SERVING_THRESHOLDS = (10_000, 20, 10)

# Apps serving in this process (tests run several): the first tunes, the last one out restores.
_serving: list[tuple[int, int, int]] = []


def freeze_startup_heap() -> Callable[[], None]:
    """Collect once, freeze what survives, raise the thresholds; return the undo for shutdown.

    The undo matters where one process starts many apps (the tests): unfrozen, the objects of
    an app that has shut down can be collected again.
    """
    _serving.append(gc.get_threshold())
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    done = False

    def restore() -> None:
        nonlocal done
        if done:
            return
        done = True
        previous = _serving.pop()
        if not _serving:
            gc.unfreeze()
            gc.set_threshold(*previous)

    return restore
