"""The pure planner: no clock, no I/O. See `plan_customer`."""

from cadence.engine.planner import email_id, plan_customer

__all__ = ["email_id", "plan_customer"]
