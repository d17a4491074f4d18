"""The use cases: a pass, planning, sending, playbooks and sweeps, preview and explain,
simulate and the demo, rules check. Each reads from the ledger, calls the engine and writes
back; none holds a second copy of what another decides."""
