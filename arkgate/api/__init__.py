"""HTTP API: sessions, metered paid endpoints, and everything generated from the catalog."""
