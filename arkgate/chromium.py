"""How arkgate starts Debian's Chromium: the flags every headless launch needs here."""

from __future__ import annotations

DEFAULT_PATH = "/usr/bin/chromium"

# As root in a container Chromium needs --no-sandbox; the networking flags stop it from calling
# Google's services on its own (refused on a closed network, and a leak on an open one).
HEADLESS_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
)
