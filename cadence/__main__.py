"""`python -m cadence` is the `cadence` command."""

from cadence.cli.quick import main

main()
