"""Not Python: ships this folder inside the package as cadence.starter.templates.

See the package-dir mapping in pyproject.toml.
"""
