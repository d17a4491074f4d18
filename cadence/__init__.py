"""cadence: one ledger for every role's customer mail, fatigue rules, proactive check-ins."""

__version__ = "0.1.0"
