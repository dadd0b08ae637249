"""The browser fixtures of tests/web (Chromium, loopback-only contexts, a live barkd-mode gateway)."""

from tests.web.conftest import browser, live_gateway, new_context  # noqa: F401
