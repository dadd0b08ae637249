"""Persistence: table definitions, the engine, and Alembic migrations."""
