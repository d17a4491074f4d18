"""The pure planner: no clock, no I/O. See `plan_customer` and `plan_account`."""

from cadence.engine.planner import email_id, plan_account, plan_customer

__all__ = ["email_id", "plan_account", "plan_customer"]
