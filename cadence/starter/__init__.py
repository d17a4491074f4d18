"""Starter files that `cadence init` and `cadence demo` write."""
