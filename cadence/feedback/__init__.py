"""The daemon's HTTP interface."""
