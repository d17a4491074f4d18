"""`cadence report`: what each rule, role and trigger costs the customer."""
