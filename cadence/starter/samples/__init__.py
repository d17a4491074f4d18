"""Sample customers, messages and events."""
