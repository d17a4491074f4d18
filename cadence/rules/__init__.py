"""The rule language: files in, frozen `Rules` out, errors as `FILE:LINE:COL: message`."""

from cadence.rules.errors import RuleError, RuleErrors
from cadence.rules.loader import load_rules

__all__ = ["RuleError", "RuleErrors", "load_rules"]
