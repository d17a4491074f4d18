"""The long-running side: the daemon (APScheduler pacing its passes) and its private control
socket. Nothing here imports the command line."""
