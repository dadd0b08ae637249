"""A bundled barkd simulator: one merchant wallet behind barkd's REST API.

Nothing in this package imports other ``arkgate`` packages, so it cannot share the
gateway adapter's assumptions about barkd.
"""
