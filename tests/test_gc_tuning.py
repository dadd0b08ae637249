"""The serving process freezes its start-up heap and raises the collection thresholds (arkgate/gc_tuning.py)."""

from __future__ import annotations

import gc

from arkgate.gc_tuning import SERVING_THRESHOLDS, freeze_startup_heap


async def test_a_serving_gateway_has_its_start_up_heap_frozen(gateway_factory):
    before = gc.get_threshold()
    async with gateway_factory() as gw:
        assert gc.get_freeze_count() > 10_000  # the app, catalog and engine are out of every collection
        assert gc.get_threshold() == SERVING_THRESHOLDS
        assert (await gw.client.get("/health/live")).status_code == 200
    assert gc.get_freeze_count() == 0  # after shutdown its objects can be collected again
    assert gc.get_threshold() == before


def test_the_last_app_to_stop_restores_the_collector():
    before = gc.get_threshold()
    first, second = freeze_startup_heap(), freeze_startup_heap()
    first()
    assert gc.get_threshold() == SERVING_THRESHOLDS and gc.get_freeze_count() > 0
    first()  # idempotent
    assert gc.get_threshold() == SERVING_THRESHOLDS
    second()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
