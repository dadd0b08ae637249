"""The catalog: one module per paid endpoint, collected by :mod:`arkgate.catalog.registry`."""
