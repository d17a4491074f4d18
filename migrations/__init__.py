"""Alembic migrations, shipped inside the package as cadence.migrations (see pyproject.toml)."""
