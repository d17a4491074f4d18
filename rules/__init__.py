"""Not Python: ships this folder inside the package as cadence.starter.rules.

See the package-dir mapping in pyproject.toml.
"""
