"""Not Python: makes this folder ship inside the package as cadence.starter.rules (see pyproject.toml)."""
