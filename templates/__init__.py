"""Not Python: makes this folder ship inside the package as cadence.starter.templates (see pyproject.toml)."""
